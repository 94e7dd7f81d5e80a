"""The one top-N path, shared by the API, batch scoring and Spark:

    history -> candidates -> scores -> filters -> top-N -> top-up -> reasons

:func:`rank_rows` runs the middle of it for any number of history rows at once
(scores, the filters of purchases and candidates, top-N, and the popular top-up);
:class:`recommender.model.Model` adds the first step and the last for one customer,
``training.batch`` and ``training.spark_jobs`` feed it chunks of customers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .popular import PopularItems


@dataclass
class Ranked:
    """Top-N per row: item indices (-1 padded only when fewer items are allowed at all),
    scores, whether each row was scored by the algorithm (False: popular items only) and
    which slots the popular top-up filled."""

    items: np.ndarray
    scores: np.ndarray
    personalised: np.ndarray
    topped_up: np.ndarray


def drop_unsupported(items: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each best-first top-N row cut at its first item scored exactly 0: that item and every
    one after it become -1 / -inf, the slots the popular top-up fills.

    Every algorithm here scores an item from the purchases that point to it (a sum over
    the history, or factors folded in from it), so 0 means that nothing the customer bought
    points to the item: listing it as personalised would give a false reason ("matches your
    purchase history"), and a popular item says more. The items after it score 0 or less
    (evidence against), so popular items come before them too, and a list that was cut
    holds every item with positive evidence: a cached one answers any n.
    """
    cut = np.cumsum(scores == 0, axis=1, dtype=np.int32) > 0
    cut &= items >= 0
    if not cut.any():
        return items, scores
    return np.where(cut, -1, items), np.where(cut, -np.inf, scores).astype(scores.dtype)


def rank_rows(
    algorithm,
    popular: PopularItems,
    rows: sp.csr_matrix,
    customers: np.ndarray,
    n: int,
    *,
    allowed: np.ndarray | None = None,
    exclude_purchased: bool = True,
) -> Ranked:
    """Top-``n`` items for each history row; ``customers[r]`` is row r's training index (or -1).

    Rows with a history are scored by the algorithm (when it is personalised at all);
    rows without one, and lists the algorithm leaves short, are filled with popular items.
    """
    width = min(int(n), rows.shape[1])
    count = rows.shape[0]
    items = np.full((count, width), -1, dtype=np.int64)
    scores = np.full((count, width), -np.inf, dtype=np.float32)
    personalised = (np.diff(rows.indptr) > 0) & bool(algorithm.personalised)
    if personalised.any():
        scored = np.flatnonzero(personalised)
        subset = rows if len(scored) == count else rows[scored]
        found, found_scores = algorithm.recommend(
            subset, width, customers=np.asarray(customers)[scored], exclude_seen=exclude_purchased, allowed=allowed
        )
        items[scored], scores[scored] = drop_unsupported(found, found_scores)
    topped_up = popular.fill(items, scores, rows, allowed, skip_history=exclude_purchased)
    return Ranked(items, scores, personalised, topped_up)
