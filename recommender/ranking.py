"""Top-k selection, written once for every algorithm and for batch scoring (and its kin,
the strongest purchases behind each recommended item).

Wide score matrices (tens of thousands of items, k of 10-50) are the hot path of
batch scoring. ``np.argpartition`` over every column costs 10-25 ns per score on
our hardware, several times the matrix product that made the scores. So wide rows go
through a *block pre-selection* first:

1. Columns are cut into ``b`` slabs of ``nb`` columns; "block" ``j`` is the set of
   columns ``{j, j + nb, j + 2 nb, ...}``, and its maximum is an elementwise
   ``np.maximum`` over the slabs (streaming, vectorised, no copy of the scores).
2. The k best blocks are found among the ``nb`` block maxima (a small partition).
   Their k maxima are k distinct columns scoring at least the k-th best block
   maximum, so the true top-k all lie inside those k blocks.
3. Only the ``k * b`` columns of those blocks (plus the ragged tail of the row) go
   through the exact selection below.

Rows where that argument fails (ties at the k-th block maximum, or fewer than k
finite scores) are recomputed by the exact path, so results never depend on it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

#: Columns per block set; 32 keeps the candidate set (k * 32) tiny and the block
#: maxima (columns / 32) cheap to partition.
BLOCK_ROWS = 32


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best columns of each row of ``scores``, best first.

    Entries scored ``-inf`` are never returned: such slots hold index -1 and score
    -inf. Tied items are listed lower index first; which of several items tied at the
    k-th place makes the cut is not specified (but the same input gives the same answer).
    """
    scores = np.atleast_2d(scores)
    rows, columns = scores.shape
    k = max(0, min(int(k), columns))
    if k == 0:
        return np.empty((rows, 0), dtype=np.int64), np.empty((rows, 0), dtype=scores.dtype)
    if rows and columns >= 8 * k * BLOCK_ROWS:
        return _top_k_by_blocks(scores, k, BLOCK_ROWS)
    return _top_k_exact(scores, k)


def _top_k_exact(scores: np.ndarray, k: int, columns: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of each row; ``columns`` maps candidate positions to item indices."""
    n_candidates = scores.shape[1]
    if k < n_candidates:
        candidates = np.argpartition(scores, n_candidates - k, axis=1)[:, n_candidates - k :]
    else:
        candidates = np.broadcast_to(np.arange(n_candidates), scores.shape)
    candidate_scores = np.take_along_axis(scores, candidates, axis=1)
    if columns is not None:
        candidates = np.take_along_axis(columns, candidates, axis=1)
    # Sort by score descending, then by item index ascending for stable ties.
    order = np.lexsort((candidates, -candidate_scores), axis=1)
    indices = np.take_along_axis(candidates, order, axis=1).astype(np.int64)
    best = np.take_along_axis(candidate_scores, order, axis=1)
    missing = ~np.isfinite(best) & (best < 0)
    indices[missing] = -1
    return indices, best


def _top_k_by_blocks(scores: np.ndarray, k: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    rows, columns = scores.shape
    width = columns // block  # nb: columns per slab; the last columns % block form the tail
    # A view (rows, block, width) of the first block * width columns: the max over
    # slabs streams through the scores once, without a copy.
    block_max = scores[:, : block * width].reshape(rows, block, width).max(axis=1)
    # The k-th best block maximum per row; np.partition (values only) is about twice
    # as fast as np.argpartition here.
    threshold = np.partition(block_max, width - k, axis=1)[:, width - k]
    reaching = block_max >= threshold[:, None]
    # Exactly k blocks reach the threshold unless there are ties or -inf rows.
    safe = (reaching.sum(axis=1) == k) & np.isfinite(threshold)
    indices = np.empty((rows, k), dtype=np.int64)
    best = np.empty((rows, k), dtype=scores.dtype)
    if safe.any():
        safe_rows = np.flatnonzero(safe)
        best_blocks = np.nonzero(reaching[safe_rows])[1].reshape(len(safe_rows), k)
        offsets = np.arange(block, dtype=np.int64) * width
        candidate_columns = (best_blocks[:, :, None] + offsets[None, None, :]).reshape(len(safe_rows), k * block)
        tail = np.arange(block * width, columns, dtype=np.int64)
        if len(tail):
            candidate_columns = np.concatenate([candidate_columns, np.broadcast_to(tail, (len(safe_rows), len(tail)))], axis=1)
        candidate_scores = scores[safe_rows[:, None], candidate_columns]
        indices[safe_rows], best[safe_rows] = _top_k_exact(candidate_scores, k, candidate_columns)
    if not safe.all():
        unsafe_rows = np.flatnonzero(~safe)
        indices[unsafe_rows], best[unsafe_rows] = _top_k_exact(scores[unsafe_rows], k)
    return indices, best


def strongest_purchases(weights: np.ndarray, purchased: np.ndarray, per_item: int) -> np.ndarray:
    """The ``per_item`` purchases adding most to each item's score, -1 padded.

    ``weights`` is (items, purchases) for one customer, or (customers, items, purchases)
    for a batch, and ``purchased`` broadcasts to it. A purchase counts only if its weight
    is positive beyond rounding: more than 1e-5 of the customer's largest weight
    (floating-point noise must not name an unrelated purchase). Ties keep history order
    (a stable sort), so batched and one-at-a-time attribution name the same purchases.
    """
    scale = np.abs(weights).max(axis=(-2, -1), keepdims=True) if weights.size else np.zeros((1, 1))
    order = np.argsort(-weights, axis=-1, kind="stable")[..., :per_item]
    strongest = np.take_along_axis(weights, order, axis=-1)
    named = np.take_along_axis(np.broadcast_to(purchased, weights.shape), order, axis=-1)
    chosen = np.where(strongest > _NOISE * scale, named, -1).astype(np.int32)
    if chosen.shape[-1] < per_item:
        chosen = np.concatenate([chosen, np.full((*chosen.shape[:-1], per_item - chosen.shape[-1]), -1, np.int32)], axis=-1)
    return chosen


_NOISE = 1e-5  # relative size below which a contribution is rounding error

#: Bounds of one batched attribution (rows x asked items x purchases, dense): tens of MB.
ATTRIBUTION_PURCHASES, ATTRIBUTION_ROWS = 16384, 256


def similar_length_batches(lengths: np.ndarray) -> Iterator[np.ndarray]:
    """The rows with a history (``lengths`` > 0) in batches of similar history length, shortest
    first, so that stacking a batch padded to its longest wastes little: each batch has at most
    ATTRIBUTION_ROWS rows and, once padded, ATTRIBUTION_PURCHASES purchases (or is one row)."""
    order = np.argsort(lengths, kind="stable")
    order = order[lengths[order] > 0]
    start = 0
    while start < len(order):
        stop = start + 1
        while stop < len(order) and (stop - start + 1) * lengths[order[stop]] <= ATTRIBUTION_PURCHASES and stop - start < ATTRIBUTION_ROWS:
            stop += 1
        yield order[start:stop]
        start = stop
