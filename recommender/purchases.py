"""Reading purchase history (CSV or Parquet) into a validated :class:`PurchaseLog`.

Columns: ``customer_id`` and ``item_id`` (required, kept as strings), and optionally
``timestamp`` (ISO 8601 or epoch seconds), ``quantity`` (positive number, default 1)
and ``event_type`` (weighted by ``event_weights``; default ``purchase``). A
:class:`~recommender.store_format.StoreFormat` reads a store's export under its own
column names, with its returns (negative quantities) and its rows without a customer.

Every row becomes one event of weight ``event_weights[event_type] * quantity`` (negative
for a return); the interaction matrix sums the weights of a customer's events for an
item (see :mod:`recommender.interactions`). Ids that arrived as floats (``17850.0``)
are read as whole numbers (``17850``) by :func:`recommender.ids.arrow_float_ids`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import DataError
from .ids import BLANK, EMPTY, NOT_WHOLE, ONLY_SPACES, arrow_float_ids, arrow_id_problems
from .store_format import StoreFormat
from .tables import PLAIN, file_columns, read_table, row_label
from .timestamps import parse_timestamps
from .vocabulary import IdVocabulary
from .weights import DEFAULT_EVENT_WEIGHTS, PURCHASE, weigh_events

REQUIRED_COLUMNS = ("customer_id", "item_id")
OPTIONAL_COLUMNS = ("timestamp", "quantity", "event_type")
BAD_ROW_POLICIES = ("error", "skip")
NO_CUSTOMER = "no customer"
NOT_A_PRODUCT = "not a product"  # the store format's not_products: postage, fees, discounts


@dataclass
class PurchaseLog:
    """Events as parallel arrays, ids encoded against the two vocabularies."""

    customers: IdVocabulary
    items: IdVocabulary
    customer_index: np.ndarray  # int32, one per event
    item_index: np.ndarray  # int32, one per event
    weight: np.ndarray  # float32: event weight x quantity; negative for a return
    timestamp: np.ndarray | None = None  # int64 epoch seconds, or None when the file had none
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> rows dropped
    notes: list[str] = field(default_factory=list)  # what the loader read differently from the file's text
    # bool per event: a purchase (or its return), not a view, click or cart; None when every
    # event is one. Reasons name only these as "bought" (:func:`browsed_cells`).
    bought: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.customer_index)

    @property
    def returns(self) -> int:
        """How many events are returns (negative weight)."""
        return int((self.weight < 0).sum())

    def subset(self, mask: np.ndarray) -> PurchaseLog:
        """The events where ``mask`` is true, against the same vocabularies."""
        return PurchaseLog(
            self.customers,
            self.items,
            self.customer_index[mask],
            self.item_index[mask],
            self.weight[mask],
            None if self.timestamp is None else self.timestamp[mask],
            bought=None if self.bought is None else self.bought[mask],
        )


def load_purchases(
    path,
    *,
    event_weights: dict[str, float] | None = None,
    on_bad_rows: str = "error",
    store_format: StoreFormat | None = None,
) -> PurchaseLog:
    """Load and validate purchase history from ``path`` (.csv, .csv.gz, .parquet).

    ``on_bad_rows='error'`` stops at the first bad row with its file, line and column;
    ``'skip'`` drops bad rows and reports the count per reason in ``PurchaseLog.skipped``.
    ``store_format`` names the file's own columns and says what its negative quantities
    and its rows without a customer mean (default: the plain format, strict about both).
    """
    if on_bad_rows not in BAD_ROW_POLICIES:
        raise ValueError(f"on_bad_rows must be one of {BAD_ROW_POLICIES}, not {on_bad_rows!r}")
    store_format = store_format or PLAIN
    weights = dict(DEFAULT_EVENT_WEIGHTS if event_weights is None else event_weights)
    path = Path(path)
    shown = store_format.source  # errors name the file's own column
    table, malformed = read_table(path, REQUIRED_COLUMNS + OPTIONAL_COLUMNS, on_bad_rows, store_format)
    _check_columns(path, table, store_format)
    checks = _RowChecks(path, table.num_rows)
    table, notes = _clean_ids(table, checks, store_format)

    event_type = table.column("event_type") if "event_type" in table.column_names else None
    if event_type is not None:
        known = pc.is_in(event_type, value_set=pa.array(list(weights), pa.string()))
        checks.add(shown("event_type"), f"unknown event type (known: {', '.join(weights)})", pc.invert(pc.fill_null(known, False)), event_type)
    returns = store_format.returns == "net"
    quantity = _quantities(table, checks, shown("quantity"), returns) if "quantity" in table.column_names else np.ones(table.num_rows)
    weight = weigh_events(event_type, quantity, weights, returns=returns)
    timestamp = None
    if "timestamp" in table.column_names:
        column = table.column("timestamp")
        timestamp, unparsable = parse_timestamps(column)
        checks.add(shown("timestamp"), "is neither ISO 8601 nor epoch seconds", unparsable, column)

    keep, skipped = checks.resolve(on_bad_rows)
    if malformed:
        skipped["wrong number of fields"] = malformed
    if not keep.any():
        raise DataError("every row was rejected: " + "; ".join(f"{n} {r}" for r, n in skipped.items()), path=path)
    if not ((weight[keep] != 0) if returns else (weight[keep] > 0)).any():
        raise DataError(_nothing_weighted(event_type, weights), path=path)
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
        notes=notes,
        bought=_bought(event_type, keep),
    )


def _nothing_weighted(event_type, weights: dict[str, float]) -> str:
    """Why no row of a file counts: the event types it has against the weight table's."""
    if event_type is None:
        found = "it has no event_type column, so every row is a purchase"
    else:
        kinds = sorted(str(kind) for kind in pc.unique(event_type).to_pylist() if kind is not None)
        found = f"its event types: {', '.join(kinds[:10])}{', ...' if len(kinds) > 10 else ''}"
    table = ", ".join(f"{kind}={weight:g}" for kind, weight in weights.items()) or "none"
    return f"no row has an event type weighted above 0, so there is nothing to learn from ({found}; the weights: {table})"


def _bought(event_type, keep: np.ndarray) -> np.ndarray | None:
    """Which kept rows are purchases (``event_type`` "purchase"); None when all are, or the
    file has no event type column (every row a purchase)."""
    if event_type is None:
        return None
    bought = pc.fill_null(pc.equal(event_type, PURCHASE), False).to_numpy(zero_copy_only=False)[keep]
    return None if bought.all() else bought


def _check_columns(path: Path, table: pa.Table, store_format: StoreFormat) -> None:
    """The required columns, and every column the mapping names, are there; and some rows."""
    for name in REQUIRED_COLUMNS + tuple(store_format.columns):
        if name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS and name not in table.column_names:
            mapped = "named by the column mapping " if name in store_format.columns else ""
            raise DataError(
                f"{'required ' if name in REQUIRED_COLUMNS else ''}column {mapped}is missing (found: {', '.join(file_columns(path)) or 'none'})",
                path=path,
                line=1,
                column=store_format.source(name),
            )
    if table.num_rows == 0:
        raise DataError("no data rows after the header", path=path)


def _clean_ids(table: pa.Table, checks: _RowChecks, store_format: StoreFormat) -> tuple[pa.Table, list[str]]:
    """Ids that arrived as floats made whole, guest rows set aside (when asked), ids checked;
    returns the table and notes on what was read differently from the file's text."""
    notes, customer_not_whole = [], None
    for name in REQUIRED_COLUMNS:
        original = table.column(name)
        column, changed, not_whole = arrow_float_ids(original)
        if changed:
            table = table.set_column(table.column_names.index(name), name, column)
            notes.append(f"{store_format.source(name)}: ids stored as floating-point numbers (17850.0) read as whole numbers (17850)")
        if not_whole is not None:
            not_whole = _as_mask(not_whole)
            checks.add(store_format.source(name), NOT_WHOLE, not_whole, original)
            customer_not_whole = not_whole if name == "customer_id" else customer_not_whole
    if store_format.rows_without_customer == "skip":
        customers = table.column("customer_id")  # empty or spaces alone: no customer (a guest's purchase)
        missing = pc.fill_null(pc.or_(pc.equal(pc.utf8_length(customers), 0), pc.match_substring_regex(customers, ONLY_SPACES)), True)
        missing = missing.to_numpy(zero_copy_only=False)
        # A float id that is not whole reads as missing too, but it is a bad row, not a guest.
        checks.exclude(NO_CUSTOMER, missing if customer_not_whole is None else missing & ~customer_not_whole)
    if store_format.not_products:
        codes = pa.array(list(store_format.not_products), pa.string())
        checks.exclude(NOT_A_PRODUCT, pc.fill_null(pc.is_in(table.column("item_id"), value_set=codes), False))
    for name in REQUIRED_COLUMNS:
        column = table.column(name)
        for problem, bad in arrow_id_problems(column):
            # A row with no customer is most often a guest's purchase, which has an option of its own.
            hint = "; a row without a customer is skipped with --rows-without-customer skip" if name == "customer_id" and problem in (EMPTY, BLANK) else ""
            checks.add(store_format.source(name), problem, bad, column, hint=hint)
    return table, notes


def _quantities(table: pa.Table, checks: _RowChecks, shown: str, returns: bool) -> np.ndarray:
    """The quantity column as float64: positive, or (with returns) non-zero, negative for a return."""
    column = table.column("quantity")
    quantity, unparsable = _parse_numbers(column)
    checks.add(shown, "is not a number", unparsable, column)
    if returns:
        usable = np.isfinite(quantity) & (quantity != 0)
        checks.add(shown, "must be a non-zero number (negative for a return)", ~unparsable & ~usable, column)
    else:
        usable = np.isfinite(quantity) & (quantity > 0)
        negative = ~unparsable & (quantity < 0)
        checks.add(shown, "must be a positive number", negative, column, hint="; a negative quantity is a return only with --returns net")
        checks.add(shown, "must be a positive number, not 0 or infinite", ~unparsable & ~usable & ~negative, column)
    return np.where(unparsable, 0.0, quantity)


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
    """Collects per-row validation failures, then raises or drops them.

    Rows set aside by :meth:`exclude` (a guest purchase) are dropped whatever the policy,
    counted under their own reason, and never blamed for another failure.
    """

    def __init__(self, path: Path, num_rows: int):
        self.path = path
        self.num_rows = num_rows
        self.failures: list[tuple[str, str, np.ndarray, pa.ChunkedArray]] = []
        self.hints: dict[tuple[str, str], str] = {}
        self.excluded = np.zeros(num_rows, dtype=bool)
        self.exclusions: dict[str, int] = {}

    def add(self, column: str, reason: str, bad, values: pa.ChunkedArray, *, hint: str = "") -> None:
        """Rows ``bad`` fail ``reason``; ``hint`` is added to the message when one stops the run."""
        bad = _as_mask(bad)
        if bad.any():
            self.failures.append((column, reason, bad, values))
            self.hints[column, reason] = hint

    def exclude(self, reason: str, rows) -> None:
        rows = _as_mask(rows) & ~self.excluded
        if rows.any():
            self.excluded |= rows
            self.exclusions[reason] = self.exclusions.get(reason, 0) + int(rows.sum())

    def resolve(self, on_bad_rows: str) -> tuple[np.ndarray, dict[str, int]]:
        keep = ~self.excluded
        skipped: dict[str, int] = dict(self.exclusions)
        failures = [(column, reason, bad & keep, values) for column, reason, bad, values in self.failures if (bad & keep).any()]
        if on_bad_rows == "error" and failures:
            first = min(failures, key=lambda failure: int(np.argmax(failure[2])))
            column, reason, bad, values = first
            row = int(np.argmax(bad))
            value = values[row].as_py()
            shown = value if value is None or len(str(value)) <= 60 else str(value)[:57] + "..."
            raise DataError(
                f"{reason} (value {shown!r}){self.hints.get((column, reason), '')}; fix the row or use --on-bad-rows skip",
                path=self.path,
                line=row_label(self.path, row),
                column=column,
            )
        for column, reason, bad, _ in failures:
            label = f"{column} {reason}"
            newly_dropped = int((bad & keep).sum())
            if newly_dropped:
                skipped[label] = newly_dropped
            keep &= ~bad
        return keep, skipped


def _as_mask(values) -> np.ndarray:
    if not isinstance(values, np.ndarray):
        values = values.to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=bool)


def describe_skipped(skipped: dict[str, int]) -> str:
    """One human line for the rows dropped: those without a customer, and bad rows under
    ``--on-bad-rows skip``, counted by reason."""
    guests, not_products = skipped.get(NO_CUSTOMER, 0), skipped.get(NOT_A_PRODUCT, 0)
    bad = {reason: count for reason, count in skipped.items() if reason not in (NO_CUSTOMER, NOT_A_PRODUCT)}
    total = sum(bad.values())
    parts = [f"skipped {guests} row{'s' if guests != 1 else ''} without a customer"] if guests else []
    if not_products:
        parts.append(f"skipped {not_products} row{'s' if not_products != 1 else ''} of codes that are not products")
    if total:
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(bad.items(), key=lambda kv: -kv[1]))
        parts.append(f"skipped {total} bad row{'s' if total != 1 else ''}: {reasons}")
    return "; ".join(parts) or "no rows skipped"

