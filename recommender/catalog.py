"""The item catalog: display names, categories and prices, aligned to a model's items.

It comes from a catalog file (``item_id,name,category,price``) or, for a store's
export that carries them on every line (the UCI log's ``Description`` and
``UnitPrice``), from the purchase file itself: see :func:`catalog_from_purchases`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import DataError, UnknownCategoryError
from .ids import arrow_float_ids
from .store_format import StoreFormat
from .tables import read_table, row_label
from .vocabulary import IdVocabulary

CATALOG_COLUMNS = ("item_id", "name", "category", "price")
# A price given as text: a decimal number (no thousands separators, no currency sign).
PRICE_TEXT = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


@dataclass
class Catalog:
    """Names, categories and prices, one entry per item of a vocabulary (same order)."""

    names: np.ndarray  # unicode; the item id where the catalog has no name
    categories: np.ndarray  # unicode; "" where unknown
    prices: np.ndarray | None = None  # float64; NaN where unknown (None: no prices at all)

    def __post_init__(self):
        if self.prices is None:
            self.prices = np.full(len(self.names), np.nan)

    @classmethod
    def empty(cls, items: IdVocabulary) -> Catalog:
        return cls(items.ids.copy(), np.full(len(items), "", dtype="<U1"))

    def category_mask(self, category: str) -> np.ndarray:
        """Items whose category equals ``category`` (case-insensitive)."""
        return np.char.lower(self.categories) == category.lower()

    def category_names(self) -> list[str]:
        """The categories items have, sorted (empty without a catalog)."""
        return sorted(set(self.categories.tolist()) - {""})

    def check_category(self, category: str) -> np.ndarray:
        """The category's mask; UnknownCategoryError, naming the known categories, when no item has it."""
        mask = self.category_mask(category)
        if not mask.any():
            known = ", ".join(self.category_names()) or (
                "none (the model was trained without categories: give train a --catalog file with a category column, "
                "or map one of --data's columns with --columns category=COLUMN)"
            )
            raise UnknownCategoryError(f"no item has category {category!r}; known categories: {known}")
        return mask


def load_catalog(path, items: IdVocabulary, notes: list[str] | None = None) -> Catalog:
    """Read ``item_id,name,category,price`` (CSV or Parquet) and align it to ``items``.

    Catalog items the model never saw are ignored; model items missing from the
    catalog keep their id as name. A price must be a number of 0 or more (empty: unknown).
    An item on several lines takes its last line (an export appended to keeps its latest
    name and price), and a note saying so is appended to ``notes``.
    """
    path = Path(path)
    table, _ = read_table(path, CATALOG_COLUMNS, on_bad_rows="error")
    if "item_id" not in table.column_names:
        raise DataError("required column is missing", path=path, line=1, column="item_id")
    ids, _, _ = arrow_float_ids(table.column("item_id"))  # the purchase loader's rule, so ids match
    ids = ids.cast(pa.string())
    empty = pc.fill_null(pc.equal(pc.utf8_length(ids), 0), True).to_numpy(zero_copy_only=False)
    if empty.any():
        raise DataError("is empty", path=path, line=row_label(path, int(np.argmax(empty))), column="item_id")
    positions = items.lookup(ids.to_pylist())
    known = _last_line_of_each_item(path, positions, notes)
    names = items.ids.astype(object)
    categories = np.full(len(items), "", dtype=object)
    for column, target in (("name", names), ("category", categories)):
        if column in table.column_names:
            values = np.asarray(pc.fill_null(table.column(column), "").to_pylist(), dtype=object)
            target[positions[known]] = values[known]
    prices = np.full(len(items), np.nan)
    if "price" in table.column_names:
        values, given = _prices(path, table.column("price"), "price")
        negative = given & (values < 0)
        if negative.any():
            raise DataError("must be 0 or more", path=path, line=row_label(path, int(np.argmax(negative))), column="price")
        prices[positions[known & given]] = values[known & given]
    return _aligned(items, names, categories, prices)


def _last_line_of_each_item(path: Path, positions: np.ndarray, notes: list[str] | None) -> np.ndarray:
    """Which rows to read: of the model's items, each one's last row (a note names the first
    item listed twice, and its lines)."""
    rows = np.flatnonzero(positions >= 0)
    _, last_from_end, counts = np.unique(positions[rows][::-1], return_index=True, return_counts=True)
    chosen = np.zeros(len(positions), dtype=bool)
    chosen[rows[len(rows) - 1 - last_from_end]] = True
    repeated = counts > 1
    if repeated.any() and notes is not None:
        listed_twice = np.isin(positions, np.unique(positions[rows])[repeated])
        first = int(np.argmax(listed_twice))
        lines = [row_label(path, int(row)) for row in np.flatnonzero(positions == positions[first])]
        notes.append(f"{path}: {int(repeated.sum())} item(s) listed on more than one line, such as the item of lines "
                     f"{', '.join(map(str, lines[:3]))}{' ...' if len(lines) > 3 else ''}; each item's last line is used")
    return chosen


def catalog_from_purchases(path, items: IdVocabulary, store_format: StoreFormat, *, on_bad_rows: str = "error") -> Catalog:
    """The catalog carried by a purchase file's own lines (its name, category and price columns).

    An item's name and category are the ones on most of its lines (a tie goes to the later
    line), so a name that changed slightly, or a one-off note in the name field, does not
    win; its price is the positive unit price on most of its lines (ties: the later), the
    list price rather than a bulk discount or a free sample. Every line counts, those
    without a customer too (they still name the store's products).
    """
    path = Path(path)
    table, _ = read_table(path, CATALOG_COLUMNS, on_bad_rows, store_format)
    ids, _, not_whole = arrow_float_ids(table.column("item_id"))
    encoded = pc.dictionary_encode(ids.cast(pa.string())).combine_chunks()
    position_of_code = np.append(items.lookup(encoded.dictionary.to_pylist()), -1)
    item_of_row = position_of_code[encoded.indices.fill_null(len(encoded.dictionary)).to_numpy(zero_copy_only=False)]
    if not_whole is not None:
        item_of_row[np.asarray(not_whole, dtype=bool)] = -1
    names = items.ids.astype(object)
    categories = np.full(len(items), "", dtype=object)
    for field, target in (("name", names), ("category", categories)):
        if field in table.column_names:
            text = pc.utf8_trim_whitespace(table.column(field))
            given = pc.fill_null(pc.greater(pc.utf8_length(text), 0), False).to_numpy(zero_copy_only=False)
            found, values = _most_common(item_of_row, text, given)
            target[found] = values
    prices = np.full(len(items), np.nan)
    if "price" in table.column_names:
        values, given = _prices(path, table.column("price"), store_format.source("price"))
        found, common = _most_common(item_of_row, pa.array(values), given & (values > 0))
        prices[found] = common
    return _aligned(items, names, categories, prices)


def _prices(path: Path, column: pa.ChunkedArray, shown: str) -> tuple[np.ndarray, np.ndarray]:
    """A price column as float64 and a mask of rows that give one (empty text: none given);
    text that is not a number is an error naming its line."""
    if not pa.types.is_string(column.type):
        values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return np.nan_to_num(values, nan=0.0), np.isfinite(values)
    text = pc.utf8_trim_whitespace(column)
    given = pc.fill_null(pc.greater(pc.utf8_length(text), 0), False).to_numpy(zero_copy_only=False)
    numeric = pc.fill_null(pc.match_substring_regex(text, PRICE_TEXT), False).to_numpy(zero_copy_only=False)
    bad = given & ~numeric
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"is not a number (value {text[row].as_py()!r})", path=path, line=row_label(path, row), column=shown)
    values = np.zeros(len(column))
    if given.any():
        values[given] = pc.cast(pc.filter(text, pa.array(given)), pa.float64()).to_numpy(zero_copy_only=False)
    return values, given


def _most_common(item_of_row: np.ndarray, values, valid: np.ndarray) -> tuple[np.ndarray, list]:
    """Per item, the value on most of its valid rows (a tie goes to the later row):
    the items that have one, and their values."""
    valid = np.asarray(valid, dtype=bool) & (item_of_row >= 0)
    rows = np.flatnonzero(valid)
    if len(rows) == 0:
        return np.zeros(0, dtype=np.int64), []
    table = pa.table({"item": item_of_row[rows], "value": pc.take(values, pa.array(rows)), "row": rows})
    counted = table.group_by(["item", "value"]).aggregate([("row", "count"), ("row", "max")])
    best = counted.sort_by([("item", "ascending"), ("row_count", "descending"), ("row_max", "descending")])
    item = best.column("item").to_numpy()
    first = np.concatenate([[True], item[1:] != item[:-1]])
    return item[first], np.asarray(best.column("value").to_pylist(), dtype=object)[first].tolist()


def catalog_of(items: IdVocabulary, values: dict[str, dict[str, object]]) -> Catalog:
    """A catalog from per-item values found elsewhere (a Spark job's aggregates): ``values``
    maps a field (name, category, price) to {item id: value}; ids the vocabulary lacks are left out."""
    names, categories, prices = items.ids.astype(object), np.full(len(items), "", dtype=object), np.full(len(items), np.nan)
    for field, target in (("name", names), ("category", categories), ("price", prices)):
        found = values.get(field) or {}
        positions = items.lookup(list(found))
        known = positions >= 0
        target[positions[known]] = np.asarray(list(found.values()), dtype=object)[known]
    return _aligned(items, names, categories, prices)


def _aligned(items: IdVocabulary, names: np.ndarray, categories: np.ndarray, prices: np.ndarray) -> Catalog:
    # An empty name is less useful than the id it would hide.
    names = np.where(names == "", items.ids.astype(object), names)
    return Catalog(
        _distinct(np.asarray(names.tolist(), dtype=str), items.ids), np.asarray(categories.tolist(), dtype=str), prices
    )


def _distinct(names: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Names that tell items apart: a name shared by several items gets each item's id in
    brackets ("Mug (SKU-7)"), or "often bought with Mug" could be listed under another Mug."""
    _, inverse, counts = np.unique(names, return_inverse=True, return_counts=True)
    shared = counts[inverse] > 1
    if not shared.any():
        return names
    named = names.astype(object)
    named[shared] = [f"{name} ({item_id})" for name, item_id in zip(names[shared].tolist(), ids[shared].tolist())]
    return np.asarray(named.tolist(), dtype=str)
