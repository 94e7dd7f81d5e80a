"""Times in, epoch seconds (UTC) out: one parser for purchase files, the API and the command line.

A time is ISO 8601 text (``2025-03-01T10:00:00Z``, ``2025-03-01``, offsets allowed;
a time without an offset is UTC) or a number of epoch seconds. Values beyond
:data:`MAX_ABS_EPOCH_SECONDS` (about the year 5138, or before 3200 BC) are typos, and
would overflow int64 arithmetic downstream, so they are refused like unparsable text.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MAX_ABS_EPOCH_SECONDS = 1e11
_LONGEST_ISO_TEXT = 64


def parse_timestamp(value) -> int | None:
    """One time (ISO 8601 text or epoch seconds) as int epoch seconds; None when it is neither."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value) if math.isfinite(value) and abs(value) < MAX_ABS_EPOCH_SECONDS else None
    if not isinstance(value, str) or len(value) > _LONGEST_ISO_TEXT:
        return None
    text = value.strip()
    return parse_timestamp(float(text)) if _looks_numeric(text) else parse_iso_timestamp(text)


def parse_iso_timestamp(text: str) -> int | None:
    """ISO 8601 text alone (no epoch numbers) as int epoch seconds; None when it is not."""
    if not isinstance(text, str) or len(text) > _LONGEST_ISO_TEXT:
        return None
    return _iso_to_epoch(text.strip())


def parse_timestamps(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A column of times (text, numbers or Arrow timestamps) as int64 epoch seconds.

    Returns the values and a mask of unparsable rows (nulls, text that is no time,
    numbers out of range), which read as 0.
    """
    if pa.types.is_timestamp(column.type):
        seconds = pc.cast(column, pa.timestamp("s", tz=column.type.tz), safe=False).cast(pa.int64())
        return _checked_seconds(seconds.to_numpy(zero_copy_only=False).astype(np.float64))
    if not pa.types.is_string(column.type):
        return _checked_seconds(column.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64))
    text = pc.utf8_trim_whitespace(column)
    numeric = pc.fill_null(pc.match_substring_regex(text, _NUMERIC), False).to_numpy(zero_copy_only=False).astype(bool)
    values = np.zeros(len(column), dtype=np.int64)
    bad = np.zeros(len(column), dtype=bool)
    if numeric.any():
        seconds, out_of_range = _checked_seconds(pc.cast(pc.filter(text, pa.array(numeric)), pa.float64()).to_numpy(zero_copy_only=False))
        values[numeric], bad[numeric] = seconds, out_of_range
    if (~numeric).any():
        iso = pc.filter(text, pa.array(~numeric))
        parsed = _parse_iso_vectorised(iso)
        if parsed is None:
            parsed, unparsable = _parse_iso_one_by_one(iso.to_pylist())
        else:
            parsed, unparsable = _checked_seconds(parsed.astype(np.float64))
        values[~numeric], bad[~numeric] = parsed, unparsable
    return values, bad


_NUMERIC = r"^[+-]?\d+(\.\d*)?$"
_OFFSET = re.compile(r"(Z|[+-]\d\d:?\d\d)$")


def _looks_numeric(text: str) -> bool:
    body = text[1:] if text[:1] in "+-" else text
    whole, _, fraction = body.partition(".")
    return whole.isdigit() and (not fraction or fraction.isdigit()) and whole.isascii()


def _checked_seconds(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float seconds -> (int64 seconds, mask of NaN or out-of-range values, which read as 0)."""
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(values) < MAX_ABS_EPOCH_SECONDS)  # NaN compares false: bad too
    return np.where(bad, 0.0, values).astype(np.int64), bad


def _parse_iso_vectorised(text: pa.ChunkedArray) -> np.ndarray | None:
    """Arrow's parser; None when any value needs the careful path (nulls included)."""
    if text.null_count:
        return None
    targets = [pa.timestamp("s", tz="UTC"), pa.timestamp("s")]
    first = text[0].as_py() if len(text) else ""
    if not _OFFSET.search(first):
        targets.reverse()  # naive times: a failed cast costs as much as a parse, so try the likely one first
    for target in targets:
        try:
            return pc.cast(text, target).cast(pa.int64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return None


def _parse_iso_one_by_one(text: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    values = np.zeros(len(text), dtype=np.int64)
    bad = np.zeros(len(text), dtype=bool)
    cache: dict[str | None, int | None] = {}
    for i, value in enumerate(text):
        if value not in cache:
            cache[value] = _iso_to_epoch(value) if value else None
        parsed = cache[value]
        if parsed is None:
            bad[i] = True
        else:
            values[i] = parsed
    return values, bad


def _iso_to_epoch(value: str) -> int | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = moment.timestamp()
    return int(seconds) if abs(seconds) < MAX_ABS_EPOCH_SECONDS else None


def iso_time(seconds: int) -> str:
    """Epoch seconds as ISO 8601 text in UTC (``2011-08-31T17:00:00Z``), for manifests and reports."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Spark's own text-to-time cast is more lenient than ``datetime.fromisoformat`` (it reads
# "2025-3-1" and "2025-03" as dates): only text that starts with a full date goes to it.
_SPARK_ISO_DATE = r"^\d{4}-\d\d-\d\d([T ]|$)"


def spark_parse_timestamps(column, column_type: str):
    """The same rule as a Spark column expression: int epoch seconds (long), null where the
    value is no time or out of range. ``column_type`` is the column's Spark type name
    (``frame.dtypes``); naive times are read as UTC, so the session's time zone must be UTC
    (:func:`recommender.spark_support.spark_session` sets it)."""
    from pyspark.sql import functions as F

    if column_type.startswith("timestamp"):  # timestamp_ntz (naive) becomes one in the session's zone, UTC, first
        seconds = column.cast("timestamp").cast("long").cast("double")
    elif column_type == "string":
        text = F.trim(column)
        as_time = F.when(text.rlike(_SPARK_ISO_DATE), text.try_cast("timestamp").cast("long").cast("double"))
        seconds = F.when(text.rlike(_NUMERIC), text.try_cast("double")).otherwise(as_time)
    else:
        seconds = column.try_cast("double")
    return F.when(F.abs(seconds) < MAX_ABS_EPOCH_SECONDS, seconds.cast("long"))
