"""Helpers shared by the table readers: line numbers and timestamp parsing."""

from __future__ import annotations

import csv
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


def first_line_with_wrong_field_count(path: Path, expected: int) -> int | None:
    """The first line whose number of fields differs from the header's (error path only)."""
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for row in reader:
            if len(row) != expected:
                return reader.line_num
    return None


def timestamps_to_epoch_seconds(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Parse ISO 8601 strings or epoch seconds into int64 epoch seconds (UTC).

    Naive ISO times are taken as UTC. Returns the values and a mask of unparsable rows.
    """
    if pa.types.is_timestamp(column.type):
        seconds = pc.cast(column, pa.timestamp("s", tz=column.type.tz)).cast(pa.int64())
        values = seconds.to_numpy(zero_copy_only=False)
        return np.nan_to_num(values).astype(np.int64), np.isnan(values.astype(float))
    if not pa.types.is_string(column.type):
        values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return np.nan_to_num(values).astype(np.int64), np.isnan(values)
    text = pc.utf8_trim_whitespace(column)
    numeric = pc.match_substring_regex(text, r"^[+-]?\d+(\.\d*)?$").to_numpy(zero_copy_only=False).astype(bool)
    values = np.zeros(len(column), dtype=np.int64)
    bad = np.zeros(len(column), dtype=bool)
    if numeric.any():
        values[numeric] = pc.cast(pc.filter(text, pa.array(numeric)), pa.float64()).to_numpy(zero_copy_only=False)
    if (~numeric).any():
        iso = pc.filter(text, pa.array(~numeric))
        parsed = _parse_iso_fast(iso)
        if parsed is None:
            parsed, unparsable = _parse_iso_slow(iso.to_pylist())
            bad[~numeric] = unparsable
        values[~numeric] = parsed
    return values, bad


def _parse_iso_fast(text: pa.ChunkedArray) -> np.ndarray | None:
    """Arrow's vectorised parser; None when any value needs the careful path."""
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
