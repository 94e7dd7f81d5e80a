"""Which items a request allows: a candidate list, excluded items and a catalog category."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..catalog import Catalog
from ..vocabulary import IdVocabulary


def candidate_mask(
    items: IdVocabulary, catalog: Catalog, *, include: Sequence[str] | None = None, exclude: Sequence[str] = (), category: str | None = None
) -> np.ndarray | None:
    """Boolean mask over the model's items allowed by the filters; None when nothing is filtered.

    Ids the model does not know are ignored; a category matches case-insensitively, and
    one that no item has raises :class:`~recommender.errors.UnknownCategoryError` (an empty
    answer would not tell the caller that the name is wrong).
    """
    if include is None and not exclude and not category:
        return None
    mask = np.ones(len(items), dtype=bool)
    if include is not None:
        mask[:] = False
        known = items.lookup(include)
        mask[known[known >= 0]] = True
    if exclude:
        known = items.lookup(exclude)
        mask[known[known >= 0]] = False
    if category:
        mask &= catalog.check_category(category)
    return mask
