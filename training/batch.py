"""Batch scoring: top-N for many customers, streamed in chunks to CSV, Parquet or JSONL.

Memory stays bounded: one chunk of scores (chunk x items) at a time, whatever the
number of customers. The output is written under a temporary name and renamed
into place, with a small manifest beside it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from recommender.files import write_json_atomic
from recommender.model import Model

FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl"}
SCORES_PER_CHUNK = 1 << 25  # about 128 MB of float32 scores per chunk


def output_format(path) -> str:
    try:
        return FORMATS[Path(path).suffix.lower()]
    except KeyError:
        raise ValueError(f"output file must end in one of {', '.join(FORMATS)}: {path}") from None


class _ChunkWriter:
    """Appends pyarrow tables to one CSV, Parquet or JSONL file."""

    schema = pa.schema([("customer_id", pa.string()), ("item_id", pa.string()), ("rank", pa.int32()), ("score", pa.float32())])

    def __init__(self, path: Path, file_format: str):
        self.format = file_format
        if file_format == "csv":
            self.writer = pa_csv.CSVWriter(str(path), self.schema)
        elif file_format == "parquet":
            self.writer = pq.ParquetWriter(str(path), self.schema)
        else:
            self.writer = open(path, "w", encoding="utf-8")

    def write(self, table: pa.Table) -> None:
        if self.format == "jsonl":
            lines = (json.dumps(row, ensure_ascii=False) for row in table.to_pylist())
            self.writer.write("".join(line + "\n" for line in lines))
        else:
            self.writer.write_table(table)

    def close(self) -> None:
        self.writer.close()


def score_all(
    model: Model,
    out_path,
    *,
    n: int = 20,
    customers: list[str] | None = None,
    exclude_purchased: bool = True,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Write top-``n`` rows for every (or each listed) customer; returns the run's manifest.

    Listed customers the model does not know get the most popular items.
    """
    out_path = Path(out_path)
    file_format = output_format(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if customers is None:
        known_rows = np.arange(len(model.customers))
        unknown: list[str] = []
    else:
        indices = model.customers.lookup(customers)
        known_rows = indices[indices >= 0]
        unknown = [c for c, i in zip(customers, indices) if i < 0]
    chunk = max(1, SCORES_PER_CHUNK // max(1, len(model.items)))
    temporary = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    started = time.perf_counter()
    rows_written = 0
    writer = _ChunkWriter(temporary, file_format)
    try:
        for start in range(0, len(known_rows), chunk):
            users = known_rows[start : start + chunk]
            history = model.history[users]
            items, scores = model.algorithm.recommend(history, n, users=users, exclude_seen=exclude_purchased)
            rows_written += _write_chunk(writer, model.customers.ids[users], items, scores, model)
            if progress:
                progress(len(users))
        if unknown:
            popular = model.recommend("", n)  # no history: the popularity fallback
            ids = np.array([r.item_id for r in popular.items])
            table = pa.table(
                {
                    "customer_id": np.repeat(np.asarray(unknown, dtype=str), len(ids)),
                    "item_id": np.tile(ids, len(unknown)),
                    "rank": np.tile(np.arange(1, len(ids) + 1, dtype=np.int32), len(unknown)),
                    "score": np.tile(np.array([r.score for r in popular.items], dtype=np.float32), len(unknown)),
                },
                schema=_ChunkWriter.schema,
            )
            writer.write(table)
            rows_written += table.num_rows
            if progress:
                progress(len(unknown))
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
        "customers": int(len(known_rows) + len(unknown)),
        "customers_unknown_to_model": len(unknown),
        "rows": rows_written,
        "n": n,
        "seconds": round(time.perf_counter() - started, 3),
    }
    write_json_atomic(out_path.with_name(out_path.name + ".manifest.json"), manifest)
    return manifest


def _write_chunk(writer: _ChunkWriter, customer_ids: np.ndarray, items: np.ndarray, scores: np.ndarray, model: Model) -> int:
    valid = items >= 0
    counts = valid.sum(axis=1)
    ranks = np.broadcast_to(np.arange(1, items.shape[1] + 1, dtype=np.int32), items.shape)
    table = pa.table(
        {
            "customer_id": np.repeat(customer_ids, counts),
            "item_id": model.items.ids[items[valid]],
            "rank": ranks[valid],
            "score": scores[valid].astype(np.float32),
        },
        schema=_ChunkWriter.schema,
    )
    writer.write(table)
    return table.num_rows
