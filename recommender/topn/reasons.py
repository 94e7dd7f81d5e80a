"""Why an item was recommended: the purchases (or views) behind it, and the sentence a customer reads.

Every algorithm splits a score over the purchases that drove it
(:meth:`recommender.algorithms.Algorithm.contributions`); the strongest
:data:`REASONS_PER_ITEM` of them are named ("because you bought A and B").
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..ranking import strongest_purchases

REASONS_PER_ITEM = 2
POPULAR_REASON = "popular with other customers"
HISTORY_REASON = "matches your purchase history"  # personalised, but no single purchase stands out
VIEWED_HISTORY_REASON = "matches your history"  # the same, of a customer who also viewed items they never bought


def because_sentence(names: list[str], because: list[int], viewed: frozenset[int] | None = None) -> str:
    """"because you bought A and B", naming the items at indices ``because`` (or the general
    reason when none is named); items in ``viewed`` (the customer only viewed, clicked or
    carted them) are said to be viewed: "because you bought A and viewed B"."""
    if viewed and not viewed.isdisjoint(because):
        return _mixed_sentence(names, because, viewed)
    if viewed and not because:
        return VIEWED_HISTORY_REASON
    if len(because) == 2:
        # The usual case, without a loop: this runs for every item of every answer, and a
        # comprehension costs more than the rest of the line.
        return f"because you bought {names[because[0]]} and {names[because[1]]}"
    if not because:
        return HISTORY_REASON
    return "because you bought " + " and ".join([names[j] for j in because])


def _mixed_sentence(names: list[str], because: list[int], viewed: frozenset[int]) -> str:
    """Each run of items with the same verb named once: "viewed A and B", "viewed A and bought B"."""
    parts, verb = [], None
    for j in because:
        said = "viewed" if j in viewed else "bought"
        parts.append(names[j] if said == verb else f"{said} {names[j]}")
        verb = said
    return "because you " + " and ".join(parts)


def similar_sentence(item_name: str) -> str:
    return f"often bought with {item_name}"


def reasons_for_row(algorithm, row: sp.csr_matrix, customer: int, items: np.ndarray) -> list[list[int]]:
    """For one customer's history ``row``, the purchases behind each of ``items`` (indices).

    An item is never its own reason: when a bought item is listed again (``rank``,
    ``include_purchased``) the reasons name the other purchases behind it.
    """
    items = np.asarray(items)
    if len(items) == 0 or row.nnz == 0:
        return [[] for _ in items]
    try:
        weights = np.array(algorithm.contributions(row, items, customer), dtype=np.float64, copy=True)
    except NotImplementedError:
        return [[] for _ in items]
    weights[items[:, None] == row.indices[None, :]] = 0.0
    chosen = strongest_purchases(weights, row.indices, REASONS_PER_ITEM)
    return [[int(j) for j in because if j >= 0] for because in chosen]


def reasons_for_rows(algorithm, rows: sp.csr_matrix, customers: np.ndarray, items: np.ndarray) -> np.ndarray | None:
    """The same for many customers at once, (rows, k, REASONS_PER_ITEM) indices, -1 padded;
    None when the algorithm cannot attribute in batches (answers are then explained live)."""
    try:
        return algorithm.top_contributors(rows, customers, items, REASONS_PER_ITEM)
    except NotImplementedError:
        return None
