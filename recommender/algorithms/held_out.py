"""Choosing a setting at fit time on purchases held out of the training matrix.

The pattern of scikit-learn's RidgeCV: a model whose best setting differs from store
to store picks it itself, on a validation split carved out of the data it is fitted
on (never a test set), so one default holds up on every store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from ..ranking import top_k

HELD_OUT_CUSTOMERS = 2000  # at most; enough to tell settings apart by paired differences
HELD_OUT_CUSTOMER_SHARE = 0.25  # at most this share of the customers loses purchases
HELD_OUT_FRACTION = 0.2  # of each chosen customer's purchases (at least one)
CUT_OFF = 20


def hold_out(matrix: sp.csr_matrix, seed: int) -> tuple[sp.csr_matrix, np.ndarray, sp.csr_matrix]:
    """(matrix less the held-out purchases, the customers they belong to, their held-out rows).

    Customers with at least three purchases are eligible, so each keeps two or more.
    Returns an empty customer array when there are too few to learn anything from.
    """
    matrix = sp.csr_matrix(matrix)
    lengths = np.diff(matrix.indptr)
    eligible = np.flatnonzero(lengths >= 3)
    wanted = min(HELD_OUT_CUSTOMERS, int(HELD_OUT_CUSTOMER_SHARE * matrix.shape[0]))
    rng = np.random.default_rng(seed)
    if wanted < 1 or not len(eligible):
        return matrix, np.zeros(0, dtype=np.int64), sp.csr_matrix((0, matrix.shape[1]), dtype=matrix.dtype)
    customers = np.sort(rng.choice(eligible, min(wanted, len(eligible)), replace=False))
    held = np.zeros(matrix.nnz, dtype=bool)
    for customer in customers:
        start, end = matrix.indptr[customer], matrix.indptr[customer + 1]
        count = max(1, round(HELD_OUT_FRACTION * (end - start)))
        held[start + rng.choice(end - start, count, replace=False)] = True
    rows = np.repeat(np.arange(matrix.shape[0]), lengths)
    kept = sp.csr_matrix((matrix.data[~held], (rows[~held], matrix.indices[~held])), shape=matrix.shape)
    position = np.full(matrix.shape[0], -1)
    position[customers] = np.arange(len(customers))
    targets = sp.csr_matrix(
        (np.ones(held.sum(), dtype=np.float32), (position[rows[held]], matrix.indices[held])),
        shape=(len(customers), matrix.shape[1]),
    )
    return kept, customers, targets


def best_setting(
    settings: Sequence,
    scores_for: Callable[[sp.csr_matrix], Callable[[object], np.ndarray]],
    history: sp.csr_matrix,
    targets: sp.csr_matrix,
    chunk_rows: int = 512,
) -> tuple[object, list[float]]:
    """The setting whose top-20 lists find most held-out purchases (Recall@20 + NDCG@20),
    and each setting's figure. ``scores_for(rows)`` prepares a batch once and returns a
    function from a setting to its dense scores, so the settings share the costly part; a
    float32 array it returns is the caller's to change (the purchases are set to -inf in it).
    Ties go to the earlier setting."""
    from ..evaluation.metrics import accuracy_at_k, hit_matrix  # here: evaluation imports the algorithms

    totals = np.zeros(len(settings))
    cut_off = min(CUT_OFF, history.shape[1])
    for start in range(0, history.shape[0], chunk_rows):
        rows, wanted = history[start : start + chunk_rows], targets[start : start + chunk_rows]
        scored = scores_for(rows)
        seen_rows = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
        for k, setting in enumerate(settings):
            scores = np.asarray(scored(setting), dtype=np.float32)  # a copy unless float32 already
            scores[seen_rows, rows.indices] = -np.inf
            recommended, _ = top_k(scores, cut_off)
            figures = accuracy_at_k(hit_matrix(recommended, wanted), np.diff(wanted.indptr), cut_off)
            totals[k] += (figures["recall"] + figures["ndcg"]) * rows.shape[0]
    totals /= max(history.shape[0], 1)
    return settings[int(np.argmax(totals))], totals.tolist()
