"""Top-N accuracy metrics, computed vectorised over all evaluated customers at once.

Definitions (binary relevance; T = the customer's test items, R@k = the top-k list):
  precision@k = |R@k ∩ T| / k
  recall@k    = |R@k ∩ T| / |T|
  ndcg@k      = Σ_{j<k} hit_j / log2(j + 2)  /  Σ_{j < min(|T|, k)} 1 / log2(j + 2)
  map@k       = Σ_{j<k} hit_j · precision@(j+1)  /  min(|T|, k)
  hit_rate@k  = 1 if R@k ∩ T is not empty
  mrr@k       = 1 / (rank of the first hit), 0 without a hit
Every metric is averaged over customers with at least one test item. Catalog
coverage is the share of items recommended to anyone; popularity is the mean share
of training customers who bought each recommended item.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

ACCURACY_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")


def hit_matrix(recommended: np.ndarray, test: sp.csr_matrix) -> np.ndarray:
    """Boolean [customers x k]: whether each recommended item is in that customer's test set."""
    n_items = test.shape[1]
    rows = np.repeat(np.arange(test.shape[0], dtype=np.int64), np.diff(test.indptr))
    test_keys = np.sort(rows * n_items + test.indices)
    keys = np.arange(recommended.shape[0], dtype=np.int64)[:, None] * n_items + recommended
    found = np.searchsorted(test_keys, keys)
    found = np.minimum(found, max(len(test_keys) - 1, 0))
    hits = (test_keys[found] == keys) if len(test_keys) else np.zeros(keys.shape, dtype=bool)
    return hits & (recommended >= 0)


def accuracy_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> dict[str, float]:
    """Mean accuracy metrics at cut-off ``k`` from a hit matrix with at least k columns."""
    return {name: float(values.mean()) for name, values in per_customer_accuracy(hits, n_relevant, k).items()}


def per_customer_accuracy(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Each accuracy metric at cut-off ``k``, one value per customer (row of ``hits``)."""
    hits = hits[:, :k].astype(np.float64)
    n_relevant = np.asarray(n_relevant, dtype=np.float64)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)[np.minimum(n_relevant, k).astype(int) - 1]
    hit_count = hits.sum(axis=1)
    cumulative_precision = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    first_hit = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, np.inf)
    return {
        "precision": hit_count / k,
        "recall": hit_count / n_relevant,
        "ndcg": (hits * discounts).sum(axis=1) / ideal,
        "map": (hits * cumulative_precision).sum(axis=1) / np.minimum(n_relevant, k),
        "hit_rate": (hit_count > 0).astype(np.float64),
        "mrr": 1.0 / first_hit,
    }


def per_customer_recall(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    return hits[:, :k].sum(axis=1) / np.asarray(n_relevant, dtype=np.float64)


def catalog_coverage(recommended: np.ndarray, n_items: int) -> float:
    shown = np.unique(recommended[recommended >= 0])
    return float(len(shown) / n_items) if n_items else 0.0


def mean_popularity(recommended: np.ndarray, train: sp.csr_matrix) -> float:
    """Mean share of training customers who bought each recommended item."""
    share = np.bincount(train.indices, minlength=train.shape[1]) / max(train.shape[0], 1)
    valid = recommended[recommended >= 0]
    return float(share[valid].mean()) if len(valid) else 0.0
