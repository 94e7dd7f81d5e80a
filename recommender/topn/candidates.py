"""Which items a request allows: a candidate list, excluded items and a catalog category."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..catalog import Catalog
from ..errors import NoKnownItemsError
from ..vocabulary import IdVocabulary


def candidate_mask(
    items: IdVocabulary, catalog: Catalog, *, include: Sequence[str] | None = None, exclude: Sequence[str] = (), category: str | None = None
) -> np.ndarray | None:
    """Boolean mask over the model's items allowed by the filters; None when nothing is filtered.

    Ids the model does not know are ignored, but a candidate list none of whose ids it knows
    raises :class:`~recommender.errors.NoKnownItemsError`; a category matches
    case-insensitively, and one that no item has raises
    :class:`~recommender.errors.UnknownCategoryError` (an empty answer would not tell the
    caller that the names are wrong).
    """
    if include is None and not exclude and not category:
        return None
    mask = np.ones(len(items), dtype=bool)
    if include is not None:
        mask[:] = False
        known = items.lookup(include)
        if not (known >= 0).any():
            raise NoKnownItemsError(f"none of the {len(include)} items to include is known to the model" if len(include) else "the list of items to include is empty")
        mask[known[known >= 0]] = True
    if exclude:
        known = items.lookup(exclude)
        mask[known[known >= 0]] = False
    if category:
        mask &= catalog.check_category(category)
    return mask
