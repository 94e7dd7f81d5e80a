"""Helpers shared by the table readers: line numbers and timestamp parsing."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


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


# Epoch seconds beyond this (about the year 5138, or before 3200 BC) are typos, and would
# overflow int64 arithmetic downstream: such rows are unparsable, like the API's timestamps.
MAX_ABS_EPOCH_SECONDS = 1e11


def timestamps_to_epoch_seconds(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Parse ISO 8601 strings or epoch seconds into int64 epoch seconds (UTC).

    Naive ISO times are taken as UTC. Returns the values and a mask of unparsable rows
    (nulls, text that is no time, numbers outside +-1e11 seconds).
    """
    if pa.types.is_timestamp(column.type):
        seconds = pc.cast(column, pa.timestamp("s", tz=column.type.tz), safe=False).cast(pa.int64())
        return _checked_seconds(seconds.to_numpy(zero_copy_only=False).astype(np.float64))
    if not pa.types.is_string(column.type):
        return _checked_seconds(column.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64))
    text = pc.utf8_trim_whitespace(column)
    numeric = pc.fill_null(pc.match_substring_regex(text, r"^[+-]?\d+(\.\d*)?$"), False).to_numpy(zero_copy_only=False).astype(bool)
    values = np.zeros(len(column), dtype=np.int64)
    bad = np.zeros(len(column), dtype=bool)
    if numeric.any():
        seconds, out_of_range = _checked_seconds(pc.cast(pc.filter(text, pa.array(numeric)), pa.float64()).to_numpy(zero_copy_only=False))
        values[numeric], bad[numeric] = seconds, out_of_range
    if (~numeric).any():
        iso = pc.filter(text, pa.array(~numeric))
        parsed = _parse_iso_fast(iso)
        if parsed is None:
            parsed, unparsable = _parse_iso_slow(iso.to_pylist())
            bad[~numeric] = unparsable
        values[~numeric] = parsed
    return values, bad


def _checked_seconds(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float seconds -> (int64 seconds, mask of NaN or out-of-range values, which read as 0)."""
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(values) < MAX_ABS_EPOCH_SECONDS)  # NaN compares false: bad too
    return np.where(bad, 0.0, values).astype(np.int64), bad


def _parse_iso_fast(text: pa.ChunkedArray) -> np.ndarray | None:
    """Arrow's vectorised parser; None when any value needs the careful path (nulls included)."""
    if text.null_count:
        return None
    for target in (pa.timestamp("s", tz="UTC"), pa.timestamp("s")):
        try:
            return pc.cast(text, target).cast(pa.int64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return None


def _parse_iso_slow(text: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    values = np.zeros(len(text), dtype=np.int64)
    bad = np.zeros(len(text), dtype=bool)
    cache: dict[str, int | None] = {}
    for i, value in enumerate(text):
        if value not in cache:
            cache[value] = _iso_to_epoch(value)
        parsed = cache[value]
        if parsed is None:
            bad[i] = True
        else:
            values[i] = parsed
    return values, bad


def _iso_to_epoch(value: str | None) -> int | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())
