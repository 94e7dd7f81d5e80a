"""Helpers shared by the table readers: line numbers, gzip, and finding the line a problem is on."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
from pathlib import Path


def row_label(path: Path, row: int) -> int:
    """The number a user looks for: the CSV line (header is line 1) or the Parquet row (from 1)."""
    if Path(path).suffix.lower() in (".parquet", ".pq"):
        return row + 1
    return row + 2


def open_bytes(path: Path):
    """The file's bytes, decompressed when it is gzipped (``.csv.gz``), as Arrow reads it."""
    return gzip.open(path, "rb") if str(path).lower().endswith(".gz") else open(path, "rb")


def first_line_not_utf8(path: Path) -> int | None:
    """The first line holding bytes that are not UTF-8, or None when the whole file is UTF-8.

    Checked before Arrow parses a CSV: Arrow's bad-row handler cannot decode such a row,
    prints a traceback and gives up, so invalid bytes must be refused up front, by line.
    """
    with open_bytes(path) as handle:
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            for block in iter(lambda: handle.read(1 << 20), b""):
                decoder.decode(block)
            decoder.decode(b"", final=True)
            return None
        except UnicodeDecodeError:
            pass
    with open_bytes(path) as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 1


def first_line_with_wrong_field_count(path: Path, expected: int) -> int | None:
    """The first line whose number of fields differs from the header's (error path only)."""
    with io.TextIOWrapper(open_bytes(path), newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for row in reader:
            if len(row) != expected:
                return reader.line_num
    return None
