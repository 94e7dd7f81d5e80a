"""Chunk writers for batch scores: CSV, Parquet and JSONL, all fed pyarrow tables.

Writing must not cost more than scoring, so every format is vectorised: pyarrow
writes CSV and Parquet natively, and JSONL lines are assembled by pyarrow string
kernels (no Python object per row) and written as one buffer per chunk.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from recommender.topn import Ranked
from recommender.topn.answers import PERSONALISED, POPULAR

FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl"}
SCHEMA = pa.schema([("customer_id", pa.string()), ("item_id", pa.string()), ("rank", pa.int32()), ("score", pa.float32()), ("source", pa.string())])
#: A row's ``source``: the algorithm's own item, or a popular item filling a list it left short
#: (its score is then the item's buyer count, as the API's popular items are).
SOURCES = pa.array([PERSONALISED, POPULAR], pa.string())


def source_column(topped_up: np.ndarray) -> pa.Array:
    """The ``source`` of each row, from the mask of topped-up slots (one ``take``, no Python loop)."""
    return SOURCES.take(pa.array(topped_up.astype(np.int8)))


def ranked_table(ranked: Ranked, customer_ids: pa.Array, item_ids: pa.Array) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """Top-N lists (one per customer of ``customer_ids``; item -1 past a short list's end) as
    output rows: one per recommended item, ranks from 1, in :data:`SCHEMA` (what batch files
    and Spark's output hold). ``item_ids`` is the model's item vocabulary. Also returns each
    row's customer position and item index, for the JSONL writer's quoted ids."""
    items, valid = ranked.items, ranked.items >= 0
    customer_rows = np.repeat(np.arange(len(customer_ids)), valid.sum(axis=1))
    item_positions = items[valid]
    table = pa.table(
        {
            "customer_id": customer_ids.take(pa.array(customer_rows)),
            "item_id": item_ids.take(pa.array(item_positions)),
            "rank": np.broadcast_to(np.arange(1, items.shape[1] + 1, dtype=np.int32), items.shape)[valid],
            "score": ranked.scores[valid].astype(np.float32, copy=False),
            "source": source_column(ranked.topped_up[valid]),
        },
        schema=SCHEMA,
    )
    return table, customer_rows, item_positions


def output_format(path) -> str:
    """The file format named by ``path``'s suffix; ValueError for anything else."""
    try:
        return FORMATS[Path(path).suffix.lower()]
    except KeyError:
        raise ValueError(f"output file must end in one of {', '.join(FORMATS)}: {path}") from None


def json_strings(ids: np.ndarray) -> pa.Array:
    """Each id as a JSON string literal (quoted and escaped), ready to splice into a line."""
    return pa.array([json.dumps(value, ensure_ascii=False) for value in ids.tolist()], pa.string())


class ChunkWriter:
    """Appends (customer, item, rank, score, source) tables to one CSV, Parquet or JSONL file."""

    def __init__(self, path: Path, file_format: str):
        self.format = file_format
        if file_format == "csv":
            self.writer = pa_csv.CSVWriter(str(path), SCHEMA)
        elif file_format == "parquet":
            self.writer = pq.ParquetWriter(str(path), SCHEMA)
        else:
            self.writer = open(path, "wb")

    def write(self, table: pa.Table, *, json_customers: pa.Array | None = None, json_items: pa.Array | None = None) -> None:
        """Write one chunk. JSONL needs the id columns already JSON-quoted (see :func:`json_strings`)."""
        if table.num_rows == 0:
            return
        if self.format != "jsonl":
            self.writer.write_table(table)
            return
        table = table.combine_chunks()
        customers = json_customers if json_customers is not None else json_strings(table["customer_id"].to_numpy())
        items = json_items if json_items is not None else json_strings(table["item_id"].to_numpy())
        lines = pc.binary_join_element_wise(
            '{"customer_id": ',
            customers,
            ', "item_id": ',
            items,
            ', "rank": ',
            pc.cast(table["rank"].chunk(0), pa.string()),
            ', "score": ',
            # float32 -> shortest text that parses back to the same float32.
            pc.cast(table["score"].chunk(0), pa.string()),
            ', "source": "',
            table["source"].chunk(0),
            '"}\n',
            "",
        )
        lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
        if len(lines):
            offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
            self.writer.write(memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]])

    def close(self) -> None:
        self.writer.close()
