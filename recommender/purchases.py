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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from .errors import DataError
from .tables import first_line_with_wrong_field_count, row_label, timestamps_to_epoch_seconds
from .vocabulary import IdVocabulary

REQUIRED_COLUMNS = ("customer_id", "item_id")
OPTIONAL_COLUMNS = ("timestamp", "quantity", "event_type")
DEFAULT_EVENT_WEIGHTS = {"purchase": 1.0, "cart": 0.5, "view": 0.1}
MAX_ID_LENGTH = 256
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
    if not path.is_file():
        raise DataError("file not found", path=path)
    if path.stat().st_size == 0:
        raise DataError("file is empty", path=path)
    if path.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(path, columns)
    return _read_csv(path, columns, on_bad_rows)


def _read_parquet(path: Path, columns: tuple[str, ...]) -> tuple[pa.Table, int]:
    try:
        schema = pq.read_schema(path)
        present = [c for c in columns if c in schema.names]
        table = pq.read_table(path, columns=present)
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"not a readable Parquet file ({error})", path=path) from None
    converted = {}
    for name in present:
        column = table.column(name)
        if name in ("customer_id", "item_id", "event_type") and not pa.types.is_string(column.type):
            if not (pa.types.is_integer(column.type) or pa.types.is_large_string(column.type)):
                raise DataError(f"must hold strings or integers, not {column.type}", path=path, column=name)
            column = column.cast(pa.string())
        converted[name] = column
    return pa.table(converted), 0


def _read_csv(path: Path, columns: tuple[str, ...], on_bad_rows: str) -> tuple[pa.Table, int]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError:
        raise DataError("header is not valid UTF-8 text", path=path, line=1) from None
    if not header or not any(name.strip() for name in header):
        raise DataError("no header row", path=path, line=1)
    header = [name.strip().lstrip("\ufeff") for name in header]
    duplicated = sorted({name for name in header if header.count(name) > 1 and name in columns})
    if duplicated:
        raise DataError("column appears more than once in the header", path=path, line=1, column=duplicated[0])
    present = [c for c in columns if c in header]
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
        raise DataError(f"cannot be read as UTF-8 CSV ({message})", path=path) from None
    return table, len(skipped_rows)


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
        checks.add(name, "is empty", pc.fill_null(pc.equal(pc.utf8_length(column), 0), True), column)
        checks.add(name, f"is longer than {MAX_ID_LENGTH} characters", pc.greater(pc.utf8_length(column), MAX_ID_LENGTH), column)

    weight = np.ones(table.num_rows, dtype=np.float64)
    if "event_type" in table.column_names:
        column = table.column("event_type")
        known = pc.is_in(column, value_set=pa.array(list(weights), pa.string()))
        checks.add("event_type", f"unknown event type (known: {', '.join(weights)})", pc.invert(pc.fill_null(known, False)), column)
        codes = pc.index_in(column, value_set=pa.array(list(weights), pa.string())).to_numpy(zero_copy_only=False)
        weight_table = np.asarray(list(weights.values()), dtype=np.float64)
        weight = np.where(np.isnan(codes), 0.0, weight_table[np.nan_to_num(codes).astype(np.int64)])
    if "quantity" in table.column_names:
        quantity, unparsable = _parse_numbers(table.column("quantity"))
        column = table.column("quantity")
        checks.add("quantity", "is not a number", unparsable, column)
        checks.add("quantity", "must be a positive number", ~unparsable & ~(np.isfinite(quantity) & (quantity > 0)), column)
        weight = weight * np.where(unparsable, 0.0, quantity)
    timestamp = None
    if "timestamp" in table.column_names:
        column = table.column("timestamp")
        timestamp, unparsable = timestamps_to_epoch_seconds(column)
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

