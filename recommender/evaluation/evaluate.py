"""One function that returns every metric for anything that can ``recommend``."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import scipy.sparse as sp

from ..interactions import Interactions
from ..purchases import PurchaseLog
from .metrics import accuracy_at_k, catalog_coverage, hit_matrix, mean_popularity

SCORES_PER_BATCH = 1 << 24


def evaluate(
    recommender,
    train: sp.csr_matrix,
    test: sp.csr_matrix,
    ks: Iterable[int] = (10, 20),
    *,
    progress: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """Score every customer with test items, excluding their train items; return metrics.

    ``recommender`` is anything with ``recommend(history, n, users=...)`` returning
    (indices, scores), such as an :class:`~recommender.algorithms.Algorithm`.
    Keys look like ``recall@20``; ``customers`` is how many were evaluated.
    """
    ks = sorted(set(int(k) for k in ks))
    k_max = ks[-1]
    n_relevant = np.diff(test.indptr)
    users = np.flatnonzero(n_relevant > 0)
    batch = max(1, SCORES_PER_BATCH // max(train.shape[1], 1))
    recommended = np.empty((len(users), k_max), dtype=np.int64)
    for start in range(0, len(users), batch):
        chunk = users[start : start + batch]
        recommended[start : start + len(chunk)], _ = recommender.recommend(train[chunk], k_max, users=chunk)
        if progress:
            progress(len(chunk))
    hits = hit_matrix(recommended, test[users])
    results: dict[str, float] = {"customers": float(len(users))}
    for k in ks:
        for name, value in accuracy_at_k(hits, n_relevant[users], k).items():
            results[f"{name}@{k}"] = value
        results[f"coverage@{k}"] = catalog_coverage(recommended[:, :k], train.shape[1])
        results[f"popularity@{k}"] = mean_popularity(recommended[:, :k], train)
    return results


def split_matrices(train_log: PurchaseLog, test_log: PurchaseLog) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Train and test matrices over the same customers and items (test made binary)."""
    train = Interactions.from_log(train_log).matrix
    test = Interactions.from_log(test_log).matrix
    test.data[:] = 1.0
    return train, test
