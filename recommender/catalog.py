"""The optional item catalog: display names and categories, aligned to a model's items."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from .errors import DataError, UnknownCategoryError
from .purchases import read_table
from .tables import row_label
from .vocabulary import IdVocabulary


@dataclass
class Catalog:
    """Names and categories, one entry per item of a vocabulary (same order)."""

    names: np.ndarray  # unicode; the item id where the catalog has no name
    categories: np.ndarray  # unicode; "" where unknown

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
            known = ", ".join(self.category_names()) or "none (the model was trained without a catalog: train with --catalog)"
            raise UnknownCategoryError(f"no item has category {category!r}; known categories: {known}")
        return mask


def load_catalog(path, items: IdVocabulary) -> Catalog:
    """Read ``item_id,name,category`` (CSV or Parquet) and align it to ``items``.

    Catalog items the model never saw are ignored; model items missing from the
    catalog keep their id as name.
    """
    path = Path(path)
    table, _ = read_table(path, ("item_id", "name", "category"), on_bad_rows="error")
    if "item_id" not in table.column_names:
        raise DataError("required column is missing", path=path, line=1, column="item_id")
    ids = table.column("item_id")
    empty = pc.fill_null(pc.equal(pc.utf8_length(ids), 0), True).to_numpy(zero_copy_only=False)
    if empty.any():
        raise DataError("is empty", path=path, line=row_label(path, int(np.argmax(empty))), column="item_id")
    positions = items.lookup(ids.to_pylist())
    known = positions >= 0
    names = items.ids.astype(object)
    categories = np.full(len(items), "", dtype=object)
    for column, target in (("name", names), ("category", categories)):
        if column in table.column_names:
            values = np.asarray(pc.fill_null(table.column(column), "").to_pylist(), dtype=object)
            target[positions[known]] = values[known]
    # An empty name is less useful than the id it would hide.
    names = np.where(names == "", items.ids.astype(object), names)
    return Catalog(_distinct(np.asarray(names.tolist(), dtype=str), items.ids), np.asarray(categories.tolist(), dtype=str))


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
