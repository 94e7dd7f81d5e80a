"""Reading purchase history (CSV or Parquet) into a validated :class:`PurchaseLog`.

Columns: ``customer_id`` and ``item_id`` (required, kept as strings), and optionally
``timestamp`` (ISO 8601 or epoch seconds), ``quantity`` (positive number, default 1)
and ``event_type`` (weighted by ``event_weights``; default ``purchase``).

Every row becomes one event of weight ``event_weights[event_type] * quantity``; the
interaction matrix sums the weights of a customer's events for an item (see
:mod:`recommender.interactions`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from .errors import DataError
from .ids import arrow_id_problems
from .tables import first_line_not_utf8, first_line_with_wrong_field_count, open_bytes, row_label
from .timestamps import parse_timestamps
from .vocabulary import IdVocabulary
from .weights import DEFAULT_EVENT_WEIGHTS, weigh_events

REQUIRED_COLUMNS = ("customer_id", "item_id")
OPTIONAL_COLUMNS = ("timestamp", "quantity", "event_type")
BAD_ROW_POLICIES = ("error", "skip")


@dataclass
class PurchaseLog:
    """Events as parallel arrays, ids encoded against the two vocabularies."""

    customers: IdVocabulary
    items: IdVocabulary
    customer_index: np.ndarray  # int32, one per event
    item_index: np.ndarray  # int32, one per event
    weight: np.ndarray  # float32: event weight x quantity
    timestamp: np.ndarray | None = None  # int64 epoch seconds, or None when the file had none
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> rows dropped

    def __len__(self) -> int:
        return len(self.customer_index)

    def subset(self, mask: np.ndarray) -> PurchaseLog:
        """The events where ``mask`` is true, against the same vocabularies."""
        return PurchaseLog(
            self.customers,
            self.items,
            self.customer_index[mask],
            self.item_index[mask],
            self.weight[mask],
            None if self.timestamp is None else self.timestamp[mask],
        )


def read_table(path: Path, columns: tuple[str, ...], on_bad_rows: str) -> tuple[pa.Table, int]:
    """Read the named columns (those present) of a CSV or Parquet file as strings.

    Returns the table and how many malformed CSV rows were skipped.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError("is a folder; give the file itself (.csv, .csv.gz or .parquet)", path=path)
    if not path.is_file():
        raise DataError("file not found", path=path)
    if path.stat().st_size == 0:
        raise DataError("file is empty", path=path)
    if path.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(path, columns)
    try:
        return _read_csv(path, columns, on_bad_rows)
    except (OSError, EOFError) as error:  # a damaged .csv.gz: gzip.BadGzipFile, truncated stream
        raise DataError(f"cannot be read ({error})", path=path) from None


def _read_parquet(path: Path, columns: tuple[str, ...]) -> tuple[pa.Table, int]:
    try:
        schema = pq.read_schema(path)
        present = [c for c in columns if c in schema.names]
        table = pq.read_table(path, columns=present)
    # A damaged footer can also surface as UnicodeDecodeError (a ValueError) from the schema's metadata.
    except (pa.ArrowException, OSError, ValueError) as error:
        raise DataError(f"not a readable Parquet file ({error})", path=path) from None
    return pa.table({name: _parquet_column(path, name, table.column(name)) for name in present}), 0


# What each column may hold in Parquet; anything else (lists, booleans, binary) is refused
# here, by name, rather than failing later inside a cast.
_TEXT_TYPES = (pa.types.is_string, pa.types.is_large_string)
_ALLOWED_PARQUET_TYPES = {
    "timestamp": (*_TEXT_TYPES, pa.types.is_integer, pa.types.is_floating, pa.types.is_timestamp),
    "quantity": (*_TEXT_TYPES, pa.types.is_integer, pa.types.is_floating),
}


def _parquet_column(path: Path, name: str, column: pa.ChunkedArray) -> pa.ChunkedArray:
    """One Parquet column in the types the loader handles: ids and text as string, numbers as they are."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    allowed = _ALLOWED_PARQUET_TYPES.get(name, (*_TEXT_TYPES, pa.types.is_integer))
    if not any(check(column.type) for check in allowed):
        raise DataError(f"cannot hold {column.type} values", path=path, column=name)
    if any(check(column.type) for check in _TEXT_TYPES) or name not in _ALLOWED_PARQUET_TYPES:
        column = column.cast(pa.string())
    return column


def _read_csv(path: Path, columns: tuple[str, ...], on_bad_rows: str) -> tuple[pa.Table, int]:
    header = _read_header(path)
    if not header or not any(name.strip() for name in header):
        raise DataError("no header row", path=path, line=1)
    header = [name.strip().lstrip("\ufeff") for name in header]
    duplicated = sorted({name for name in header if header.count(name) > 1 and name in columns})
    if duplicated:
        raise DataError("column appears more than once in the header", path=path, line=1, column=duplicated[0])
    present = [c for c in columns if c in header]
    bad_line = first_line_not_utf8(path)
    if bad_line is not None:
        raise DataError("is not valid UTF-8 text; save the file as UTF-8", path=path, line=bad_line)
    skipped_rows = []

    def skip_row(row):
        skipped_rows.append(row)
        return "skip"

    parse_options = pa_csv.ParseOptions(invalid_row_handler=skip_row if on_bad_rows == "skip" else None)
    read_options = pa_csv.ReadOptions(column_names=header, skip_rows=1, use_threads=True)
    convert_options = pa_csv.ConvertOptions(
        column_types={name: pa.string() for name in present},
        include_columns=present,
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        table = pa_csv.read_csv(path, read_options, parse_options, convert_options)
    except pa.ArrowInvalid as error:
        message = str(error)
        if "Expected" in message and "columns" in message:
            line = first_line_with_wrong_field_count(path, len(header))
            raise DataError(
                f"expected {len(header)} fields like the header; use --on-bad-rows skip to drop such rows",
                path=path,
                line=line,
            ) from None
        if "Could not skip initial" in message:  # a header with no line after it
            raise DataError("no data rows after the header", path=path) from None
        raise DataError(f"cannot be read as UTF-8 CSV ({message})", path=path) from None
    return table, len(skipped_rows)


def _read_header(path: Path) -> list[str] | None:
    """The header's fields, decoding only the header's own bytes so a bad byte later is blamed on its line."""
    with open_bytes(path) as handle:
        start = handle.read(1 << 20)
    if start.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError("is UTF-16 text; save the file as UTF-8", path=path, line=1)
    ends = [position for position in (start.find(b"\n"), start.find(b"\r")) if position >= 0]
    raw = start[: min(ends)] if ends else start
    try:
        first_line = raw.decode("utf-8")
        # A quoted header field may span lines; then the csv module reads on from the file.
        if first_line.count('"') % 2:
            with io.TextIOWrapper(open_bytes(path), newline="", encoding="utf-8", errors="replace") as text:
                return next(csv.reader(text), None)
        return next(csv.reader(io.StringIO(first_line, newline="")), None)
    except UnicodeDecodeError:
        raise DataError("header is not valid UTF-8 text; save the file as UTF-8", path=path, line=1) from None
    except csv.Error as error:
        raise DataError(f"header cannot be read as CSV ({error})", path=path, line=1) from None


def load_purchases(
    path,
    *,
    event_weights: dict[str, float] | None = None,
    on_bad_rows: str = "error",
) -> PurchaseLog:
    """Load and validate purchase history from ``path`` (.csv, .csv.gz, .parquet).

    ``on_bad_rows='error'`` stops at the first bad row with its file, line and column;
    ``'skip'`` drops bad rows and reports the count per reason in ``PurchaseLog.skipped``.
    """
    if on_bad_rows not in BAD_ROW_POLICIES:
        raise ValueError(f"on_bad_rows must be one of {BAD_ROW_POLICIES}, not {on_bad_rows!r}")
    weights = dict(DEFAULT_EVENT_WEIGHTS if event_weights is None else event_weights)
    path = Path(path)
    table, malformed = read_table(path, REQUIRED_COLUMNS + OPTIONAL_COLUMNS, on_bad_rows)
    for name in REQUIRED_COLUMNS:
        if name not in table.column_names:
            raise DataError(
                f"required column is missing (found: {', '.join(table.column_names) or 'none'})",
                path=path,
                line=1,
                column=name,
            )
    if table.num_rows == 0:
        raise DataError("no data rows after the header", path=path)
    checks = _RowChecks(path, table.num_rows)
    for name in REQUIRED_COLUMNS:
        column = table.column(name)
        for problem, bad in arrow_id_problems(column):
            checks.add(name, problem, bad, column)

    event_type = table.column("event_type") if "event_type" in table.column_names else None
    if event_type is not None:
        known = pc.is_in(event_type, value_set=pa.array(list(weights), pa.string()))
        checks.add("event_type", f"unknown event type (known: {', '.join(weights)})", pc.invert(pc.fill_null(known, False)), event_type)
    quantity = None
    if "quantity" in table.column_names:
        quantity, unparsable = _parse_numbers(table.column("quantity"))
        column = table.column("quantity")
        checks.add("quantity", "is not a number", unparsable, column)
        checks.add("quantity", "must be a positive number", ~unparsable & ~(np.isfinite(quantity) & (quantity > 0)), column)
        quantity = np.where(unparsable, 0.0, quantity)
    weight = weigh_events(event_type, quantity if quantity is not None else np.ones(table.num_rows), weights)
    timestamp = None
    if "timestamp" in table.column_names:
        column = table.column("timestamp")
        timestamp, unparsable = parse_timestamps(column)
        checks.add("timestamp", "is neither ISO 8601 nor epoch seconds", unparsable, column)

    keep, skipped = checks.resolve(on_bad_rows)
    if malformed:
        skipped["wrong number of fields"] = malformed
    if not keep.any():
        raise DataError("every row was rejected: " + "; ".join(f"{n} {r}" for r, n in skipped.items()), path=path)
    table = table.filter(pa.array(keep)) if not keep.all() else table
    customers, customer_index = _encode(table.column("customer_id"))
    items, item_index = _encode(table.column("item_id"))
    return PurchaseLog(
        customers=customers,
        items=items,
        customer_index=customer_index,
        item_index=item_index,
        weight=weight[keep].astype(np.float32),
        timestamp=None if timestamp is None else timestamp[keep],
        skipped=skipped,
    )


def _encode(column: pa.ChunkedArray) -> tuple[IdVocabulary, np.ndarray]:
    encoded = pc.dictionary_encode(column).combine_chunks()
    vocabulary = IdVocabulary(np.asarray(encoded.dictionary.to_pylist(), dtype=str))
    return vocabulary, encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32)


def _parse_numbers(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Parse a string or numeric column into float64; second array marks unparsable rows."""
    if not pa.types.is_string(column.type):
        values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return np.nan_to_num(values, nan=0.0), np.isnan(values)
    trimmed = pc.utf8_trim_whitespace(column)
    numeric = pc.match_substring_regex(trimmed, r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
    numeric = numeric.to_numpy(zero_copy_only=False).astype(bool)
    values = np.zeros(len(column), dtype=np.float64)
    if numeric.any():
        values[numeric] = pc.cast(pc.filter(trimmed, pa.array(numeric)), pa.float64()).to_numpy(zero_copy_only=False)
    return values, ~numeric


class _RowChecks:
    """Collects per-row validation failures, then raises or drops them."""

    def __init__(self, path: Path, num_rows: int):
        self.path = path
        self.num_rows = num_rows
        self.failures: list[tuple[str, str, np.ndarray, pa.ChunkedArray]] = []

    def add(self, column: str, reason: str, bad, values: pa.ChunkedArray) -> None:
        if not isinstance(bad, np.ndarray):
            bad = bad.to_numpy(zero_copy_only=False)
        bad = np.asarray(bad, dtype=bool)
        if bad.any():
            self.failures.append((column, reason, bad, values))

    def resolve(self, on_bad_rows: str) -> tuple[np.ndarray, dict[str, int]]:
        keep = np.ones(self.num_rows, dtype=bool)
        skipped: dict[str, int] = {}
        if on_bad_rows == "error" and self.failures:
            first = min(self.failures, key=lambda failure: int(np.argmax(failure[2])))
            column, reason, bad, values = first
            row = int(np.argmax(bad))
            value = values[row].as_py()
            shown = value if value is None or len(str(value)) <= 60 else str(value)[:57] + "..."
            raise DataError(
                f"{reason} (value {shown!r}); fix the row or use --on-bad-rows skip",
                path=self.path,
                line=row_label(self.path, row),
                column=column,
            )
        for column, reason, bad, _ in self.failures:
            label = f"{column} {reason}"
            newly_dropped = int((bad & keep).sum())
            if newly_dropped:
                skipped[label] = newly_dropped
            keep &= ~bad
        return keep, skipped


def describe_skipped(skipped: dict[str, int]) -> str:
    """One human line for the rows dropped under ``--on-bad-rows skip``."""
    total = sum(skipped.values())
    if not total:
        return "no rows skipped"
    reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(skipped.items(), key=lambda kv: -kv[1]))
    return f"skipped {total} bad row{'s' if total != 1 else ''}: {reasons}"

