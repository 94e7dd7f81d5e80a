"""Top-k selection, written once for every algorithm and for batch scoring."""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best columns of each row of ``scores``, best first.

    Entries scored ``-inf`` are never returned: such slots hold index -1 and score
    -inf. Ties keep the lower item index first, so results are repeatable.
    """
    scores = np.atleast_2d(scores)
    rows, columns = scores.shape
    k = max(0, min(int(k), columns))
    if k == 0:
        return np.empty((rows, 0), dtype=np.int64), np.empty((rows, 0), dtype=scores.dtype)
    if k < columns:
        candidates = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        candidates = np.broadcast_to(np.arange(columns), (rows, columns))
    candidate_scores = np.take_along_axis(scores, candidates, axis=1)
    # Sort by score descending, then by item index ascending for stable ties.
    order = np.lexsort((candidates, -candidate_scores), axis=1)
    indices = np.take_along_axis(candidates, order, axis=1).astype(np.int64)
    best = np.take_along_axis(candidate_scores, order, axis=1)
    missing = ~np.isfinite(best) & (best < 0)
    indices[missing] = -1
    return indices, best
