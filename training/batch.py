"""Batch scoring: top-N for many customers, streamed in chunks to CSV, Parquet or JSONL.

Every chunk goes through the top-N path the API uses (:func:`recommender.topn.rank_rows`):
scores, purchase exclusion and filters, top-N, and the popular top-up of short lists;
customers the model does not know get popular items. Memory stays bounded: at most
``workers + 1`` chunks of scores (chunk x items float32) exist at a time, whatever the
number of customers. Each worker thread scores whole chunks (one matrix product with
BLAS on one thread, exclusion of purchases, top-k) so every core does both the product
and the selection; numpy releases the GIL for all of them. Chunks are written in order
by the calling thread. The output is written under a temporary name and renamed into
place, with a small manifest beside it.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
from threadpoolctl import threadpool_limits

from recommender.files import errors_naming, write_json_atomic
from recommender.model import Model
from recommender.topn import Ranked, candidate_mask, history_rows, rank_rows
from training.batch_writers import FORMATS, ChunkWriter, json_strings, output_format, ranked_table

__all__ = ["FORMATS", "SCORES_PER_CHUNK", "chunk_rows_for", "output_format", "score_all"]

#: Scores per chunk (float32): 2^25 = 128 MB, about 800 Gowalla customers. Smaller,
#: cache-sized chunks were measured slower (benchmarks/bench_score.py): a one-thread
#: product of few rows runs well below BLAS speed, and per-chunk overhead adds up.
SCORES_PER_CHUNK = 1 << 25


def chunk_rows_for(n_items: int, scores_per_chunk: int = SCORES_PER_CHUNK) -> int:
    """Customers per chunk: enough rows for an efficient product, few enough to stay in cache."""
    return int(np.clip(scores_per_chunk // max(1, n_items), 64, 8192))


def score_all(
    model: Model,
    out_path,
    *,
    n: int = 20,
    customers: Sequence[str] | None = None,
    exclude_purchased: bool = True,
    include: Sequence[str] | None = None,
    category: str | None = None,
    threads: int | None = None,
    chunk_rows: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Write top-``n`` rows for every (or each listed) customer; returns the run's manifest.

    ``include`` (candidate item ids) and ``category`` restrict the items recommended.
    Listed customers the model does not know get the most popular (allowed) items.
    ``threads`` worker threads score in parallel (default: every core).
    """
    out_path = Path(out_path)
    file_format = output_format(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if customers is None:
        rows = np.arange(len(model.customers))
        listed_ids = np.empty(0, dtype=str)
    else:
        rows = model.customers.lookup(customers)
        listed_ids = np.asarray(customers, dtype=str)
    allowed = candidate_mask(model.items, model.catalog, include=include, category=category)
    workers = max(1, threads or os.cpu_count() or 1)
    rows_per_chunk = chunk_rows or chunk_rows_for(len(model.items) if allowed is None else int(allowed.sum()))
    temporary = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    started = time.perf_counter()
    rows_written = 0
    ids = _ArrowIds(model, listed_ids, file_format == "jsonl")
    with errors_naming(out_path, temporary):
        writer = ChunkWriter(temporary, file_format)
        try:
            chunks = (np.arange(start, min(start + rows_per_chunk, len(rows))) for start in range(0, len(rows), rows_per_chunk))
            for positions, ranked in _score_chunks(model, rows, chunks, n, exclude_purchased, allowed, workers):
                rows_written += _write_chunk(writer, ids, rows[positions], positions, ranked)
                if progress:
                    progress(len(positions))
            writer.close()
            os.replace(temporary, out_path)
        except BaseException:
            writer.close()
            temporary.unlink(missing_ok=True)
            raise
    manifest = {
        "model_version": model.version,
        "output": str(out_path),
        "format": file_format,
        "customers": int(len(rows)),
        "customers_unknown_to_model": int((rows < 0).sum()),
        "rows": rows_written,
        "n": n,
        "exclude_purchased": exclude_purchased,
        "include_items": None if include is None else len(include),
        "category": category,
        "threads": workers,
        "chunk_rows": rows_per_chunk,
        "seconds": round(time.perf_counter() - started, 3),
    }
    write_json_atomic(out_path.with_name(out_path.name + ".manifest.json"), manifest)
    return manifest


def _score_chunks(model: Model, rows: np.ndarray, chunks: Iterator[np.ndarray], n: int, exclude_purchased: bool, allowed, workers: int):
    """Yield (positions in ``rows``, their :class:`Ranked` lists) per chunk, in order, with ``workers`` chunks in flight."""

    def score(positions: np.ndarray):
        customers = rows[positions]
        ranked = rank_rows(
            model.algorithm, model.popular, history_rows(model.history, customers), customers, n,
            allowed=allowed, exclude_purchased=exclude_purchased,
        )
        return positions, ranked

    # One BLAS thread per worker: the parallelism is across chunks, never oversubscribed.
    with threadpool_limits(1, "blas"), ThreadPoolExecutor(workers, thread_name_prefix="score") as pool:
        pending: deque = deque()
        for users in chunks:
            pending.append(pool.submit(score, users))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class _ArrowIds:
    """Customer and item ids as Arrow arrays, so a chunk's id columns are one ``take``.
    ``listed`` are the customer ids as the caller listed them (empty: every training customer)."""

    def __init__(self, model: Model, listed: np.ndarray, jsonl: bool):
        self.customers = model.customers.ids
        self.listed = listed
        self.items = pa.array(model.items.ids, pa.string())
        self.items_json = json_strings(model.items.ids) if jsonl else None
        self.jsonl = jsonl

    def customer_ids(self, customers: np.ndarray, positions: np.ndarray) -> np.ndarray:
        return self.listed[positions] if len(self.listed) else self.customers[customers]


def _write_chunk(writer: ChunkWriter, ids: _ArrowIds, customers: np.ndarray, positions: np.ndarray, ranked: Ranked) -> int:
    # Only the chunk's customer ids are converted to Arrow (the vocabulary may hold millions).
    chunk_ids = ids.customer_ids(customers, positions)
    table, customer_rows, item_positions = ranked_table(ranked, pa.array(chunk_ids, pa.string()), ids.items)
    if ids.jsonl:
        writer.write(table, json_customers=json_strings(chunk_ids).take(pa.array(customer_rows)), json_items=ids.items_json.take(pa.array(item_positions)))
    else:
        writer.write(table)
    return table.num_rows
