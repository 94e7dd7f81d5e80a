"""One function that returns every metric for anything that can ``recommend``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..interactions import Interactions
from ..purchases import PurchaseLog
from ..ranking import top_k
from ..topn import PopularItems, rank_rows
from ..weights import HistoryWeighting
from .metrics import accuracy_at_k, catalog_coverage, hit_matrix, mean_popularity

SCORES_PER_BATCH = 1 << 24


@dataclass
class EvaluationRun:
    """The raw outcome of scoring every test customer: enough to compute any metric or plot."""

    customers: np.ndarray  # evaluated customer rows
    recommended: np.ndarray  # [customers x k_max] item indices, -1 padded
    hits: np.ndarray  # [customers x k_max] booleans
    n_relevant: np.ndarray  # test items per evaluated customer
    train: sp.csr_matrix

    def metrics(self, ks: Iterable[int]) -> dict[str, float]:
        results: dict[str, float] = {"customers": float(len(self.customers))}
        for k in sorted(set(int(k) for k in ks)):
            for name, value in accuracy_at_k(self.hits, self.n_relevant, k).items():
                results[f"{name}@{k}"] = value
            results[f"coverage@{k}"] = catalog_coverage(self.recommended[:, :k], self.train.shape[1])
            results[f"popularity@{k}"] = mean_popularity(self.recommended[:, :k], self.train)
        return results


#: What :func:`run_evaluation` ranks, recorded beside a model's metrics: the lists as served
#: (since 2026-12-02). Manifests without it scored raw lists, which read lower where lists
#: were short or customers new (online-retail NDCG@20 up to a fifth: docs/benchmarks.md).
EVALUATED_LISTS = "served"


def run_evaluation(
    recommender, train: sp.csr_matrix, test: sp.csr_matrix, k_max: int, *, progress: Callable[[int], None] | None = None
) -> EvaluationRun:
    """Recommend ``k_max`` items to every customer with test items, excluding train items,
    through the top-N path the API and batch scoring serve from (items nothing bought points
    to, and customers without train history, get popular items), so what is measured is
    what would be served.

    ``recommender`` is an :class:`~recommender.algorithms.Algorithm` (or anything with its
    ``recommend(history, n, customers=...)`` and ``personalised``).
    """
    def ranked(popular: PopularItems, rows: sp.csr_matrix, chunk: np.ndarray) -> dict:
        return {None: rank_rows(recommender, popular, rows, chunk, k_max).items}

    return _served_runs(ranked, [None], train, test, k_max, SCORES_PER_BATCH // max(train.shape[1], 1), progress)[None]


def run_blend_evaluations(
    blend, train: sp.csr_matrix, test: sp.csr_matrix, k_max: int, weights: Iterable[float]
) -> dict[float, EvaluationRun]:
    """:func:`run_evaluation` of a fitted :class:`~recommender.algorithms.Blend` at each of
    ``weights`` (the second part's share), through the same top-N path, with each part
    scored once per batch of customers for all the weights: how the automatic choice picks
    a blend's weight without fitting or scoring its parts once per weight."""
    weights = [float(w) for w in weights]

    def ranked(popular: PopularItems, rows: sp.csr_matrix, chunk: np.ndarray) -> dict:
        first, second = blend.part_scores(rows, chunk)
        return {w: rank_rows(_ScoredRows(blend.mix(first, second, w), chunk), popular, rows, chunk, k_max).items for w in weights}

    # Both parts' scores, a mix and its filtered copy are held at once: a quarter of the batch.
    return _served_runs(ranked, weights, train, test, k_max, SCORES_PER_BATCH // 4 // max(train.shape[1], 1))


def _served_runs(ranked, keys: list, train: sp.csr_matrix, test: sp.csr_matrix, k_max: int, batch: int,
                 progress: Callable[[int], None] | None = None) -> dict:
    """The evaluation protocol, once: every customer with test items, in batches of ``batch``
    rows, ranked by ``ranked(popular, train rows, customers)`` into one top-``k_max`` list per
    key of ``keys``; an :class:`EvaluationRun` per key."""
    n_relevant = np.diff(test.indptr)
    customers = np.flatnonzero(n_relevant > 0)
    batch = max(1, batch)
    popular = PopularItems(train)
    # -1 padded: a catalogue smaller than k_max gives shorter lists, and those slots are no hit.
    recommended = {key: np.full((len(customers), k_max), -1, dtype=np.int64) for key in keys}
    for start in range(0, len(customers), batch):
        chunk = customers[start : start + batch]
        for key, found in ranked(popular, train[chunk], chunk).items():
            recommended[key][start : start + len(chunk), : found.shape[1]] = found
        if progress:
            progress(len(chunk))
    return {key: EvaluationRun(customers, found, hit_matrix(found, test[customers]), n_relevant[customers], train) for key, found in recommended.items()}


class _ScoredRows:
    """Scores already computed for the rows of ``customers``, behind the one method the top-N
    path calls: :meth:`Algorithm.recommend`'s unfiltered branch (purchases out, then top-k)."""

    personalised = True

    def __init__(self, scores: np.ndarray, customers: np.ndarray):
        self.table, self.customers = scores, customers

    def recommend(self, history, n, *, customers, exclude_seen=True, allowed=None):
        if allowed is not None:
            raise ValueError("a filtered evaluation scores through the algorithm itself")
        scores = np.array(self.table[np.searchsorted(self.customers, customers)], dtype=np.float32)
        if exclude_seen:
            scores[np.repeat(np.arange(history.shape[0]), np.diff(history.indptr)), history.indices] = -np.inf
        return top_k(scores, n)


def evaluate(
    recommender,
    train: sp.csr_matrix,
    test: sp.csr_matrix,
    ks: Iterable[int] = (10, 20),
    *,
    progress: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """All metrics at every k in ``ks``; keys look like ``recall@20``."""
    ks = sorted(set(int(k) for k in ks))
    return run_evaluation(recommender, train, test, ks[-1], progress=progress).metrics(ks)


def split_matrices(
    train_log: PurchaseLog, test_log: PurchaseLog, *, weighting: HistoryWeighting | None = None
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Train and test matrices over the same customers and items (test made binary).

    ``weighting`` weighs the train part (its recency measured from the newest train
    event); a test item is one the customer bought in the test part and did not return.
    """
    train = Interactions.from_log(train_log, weighting).matrix
    test = Interactions.from_log(test_log).matrix
    test.data[:] = 1.0
    return train, test
