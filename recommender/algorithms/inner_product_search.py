"""Exact top-k by inner product that skips most of the catalog for most customers.

Batch scoring of a factor model is one big product ``U @ Yᵀ`` followed by top-k. Items
are stored here in order of decreasing vector norm. A customer is first scored against
the ``head`` items with the largest norms only; every other item i scores at most
``|u| · |y_i| ≤ |u| · |y_head|`` (Cauchy-Schwarz). When the customer's k-th best head
score already reaches that bound, no tail item can enter their top-k, and the tail is
never computed for them; the others get the tail product too. The answer is the same as
scoring every item (up to which of several items tied at the k-th place is kept).

A single customer (a served request) gains nothing from sharing the tail product, so
:meth:`NormOrderedItems.top_k_each` takes the items block by block of decreasing norm and
stops at the first block whose largest norm cannot reach the customer's k-th best score:
on Gowalla's 128-factor ALS model, a customer who has just bought (one new purchase) is
answered after 3.5 blocks of 4,096 of its 41k items on average (400 draws).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..ranking import top_k

#: Share of the catalog (by norm) scored for everyone; on Gowalla's 128-factor ALS
#: model 40% let about half the customers skip the rest (benchmarks/bench_score.py).
HEAD_SHARE = 0.4
#: Float32 products can exceed the exact inner product by rounding; the bound keeps a margin.
_ROUNDING_MARGIN = 1e-4
#: Items per block of :meth:`NormOrderedItems.top_k_each`. A live answer on Gowalla's ALS model
#: cost the same within noise with 1,024 to 8,192 (1.3-1.4 ms in process, against 1.8 ms with
#: the whole catalog as one block); a block is 2 MB of 128 float32 factors.
ROW_BLOCK = 4096


class NormOrderedItems:
    """Item factors sorted by decreasing norm, with the positions to map back."""

    def __init__(self, item_factors: np.ndarray, head_share: float = HEAD_SHARE):
        norms = np.linalg.norm(item_factors.astype(np.float64), axis=1)
        self.order = np.argsort(-norms, kind="stable")  # position -> item
        self.position = np.empty_like(self.order)
        self.position[self.order] = np.arange(len(self.order))  # item -> position
        self.factors = np.ascontiguousarray(item_factors[self.order], dtype=np.float32)
        self.norms = norms[self.order]
        self.head = min(len(self.order), max(1, int(round(head_share * len(self.order)))))

    def top_k(self, vectors: np.ndarray, k: int, seen: sp.csr_matrix | None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices and scores of ``vectors @ Yᵀ``; ``seen`` rows' items excluded.

        Same contract as :func:`recommender.ranking.top_k`: best first, -1 / -inf padding.
        """
        rows, k = vectors.shape[0], min(int(k), len(self.order))
        seen_rows = np.repeat(np.arange(rows), np.diff(seen.indptr)) if seen is not None else np.empty(0, np.int64)
        seen_positions = self.position[seen.indices] if seen is not None else np.empty(0, np.int64)
        head_best, head_scores = self._part(vectors, 0, self.head, k, seen_rows, seen_positions)
        if self.head == len(self.order):
            return self._as_items(head_best, head_scores)
        bound = np.linalg.norm(vectors.astype(np.float64), axis=1) * self.norms[self.head] * (1 + _ROUNDING_MARGIN)
        kth = head_scores[:, k - 1] if k else np.full(rows, np.inf)
        pending = np.flatnonzero(~(kth >= bound))  # -inf (too few head items) stays pending
        if len(pending):
            mask = np.isin(seen_rows, pending)
            remap = np.full(rows, -1, dtype=np.int64)
            remap[pending] = np.arange(len(pending))
            tail_best, tail_scores = self._part(
                vectors[pending], self.head, len(self.order), k, remap[seen_rows[mask]], seen_positions[mask]
            )
            head_best[pending], head_scores[pending] = _merge(
                head_best[pending], head_scores[pending], tail_best, tail_scores, k
            )
        return self._as_items(head_best, head_scores)

    def top_k_each(self, vectors: np.ndarray, k: int, seen: sp.csr_matrix | None) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`top_k`, one row at a time, each stopping at the first block of items whose
        norm bound is below its k-th best score so far (for a few rows: a served request)."""
        rows, k = vectors.shape[0], min(int(k), len(self.order))
        positions = np.full((rows, k), -1, dtype=np.int64)
        scores = np.full((rows, k), -np.inf, dtype=np.float32)
        for row in range(rows):
            seen_here = self.position[seen.indices[seen.indptr[row]:seen.indptr[row + 1]]] if seen is not None else np.empty(0, np.int64)
            positions[row], scores[row] = self._row_top_k(vectors[row], k, seen_here)
        return self._as_items(positions, scores)

    def _row_top_k(self, vector: np.ndarray, k: int, seen_positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        reach = float(np.linalg.norm(vector.astype(np.float64))) * (1 + _ROUNDING_MARGIN)
        scores = np.empty(len(self.order), dtype=np.float32)
        best_values = np.full(k, -np.inf, dtype=np.float32)  # the k best scores so far, unordered
        stop = 0
        while stop < len(self.order) and not (k and best_values.min() >= reach * self.norms[stop]):
            start, stop = stop, min(stop + ROW_BLOCK, len(self.order))
            np.dot(self.factors[start:stop], vector, out=scores[start:stop])
            scores[seen_positions[(seen_positions >= start) & (seen_positions < stop)]] = -np.inf
            if k:
                both = np.concatenate([best_values, scores[start:stop]])
                best_values = np.partition(both, len(both) - k)[len(both) - k:]
        # No item from ``stop`` on can reach the k-th place: the answer is the prefix's top k.
        best, best_scores = top_k(scores[None, :stop], k)
        return best[0], best_scores[0]

    def _part(self, vectors, start, stop, k, seen_rows, seen_positions):
        """Top-k over positions [start, stop): (positions, scores)."""
        scores = vectors @ self.factors[start:stop].T
        inside = (seen_positions >= start) & (seen_positions < stop)
        scores[seen_rows[inside], seen_positions[inside] - start] = -np.inf
        best, best_scores = top_k(scores, k)
        positions = np.where(best >= 0, best + start, -1)
        if positions.shape[1] < k:  # a part narrower than k
            pad = k - positions.shape[1]
            positions = np.pad(positions, ((0, 0), (0, pad)), constant_values=-1)
            best_scores = np.pad(best_scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        return positions, best_scores

    def _as_items(self, positions: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        items = np.where(positions >= 0, self.order[np.maximum(positions, 0)], -1)
        # Equal scores list the lower item index first, as recommender.ranking.top_k does.
        order = np.lexsort((np.where(items >= 0, items, np.iinfo(np.int64).max), -scores), axis=1)
        return np.take_along_axis(items, order, axis=1).astype(np.int64), np.take_along_axis(scores, order, axis=1)


def _merge(first, first_scores, second, second_scores, k):
    """The k best of two candidate lists per row (positions and scores)."""
    positions = np.concatenate([first, second], axis=1)
    scores = np.concatenate([first_scores, second_scores], axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(positions, order, axis=1), np.take_along_axis(scores, order, axis=1)
