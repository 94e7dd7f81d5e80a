"""Each training customer's best unbought items, computed at training (Gorse's cache).

Served as they are while the customer's history is unchanged, so most requests need
no scoring and no attribution: the cache is the "scores" and "reasons" steps of the
top-N path, done ahead of time.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from .path import drop_unsupported
from .reasons import REASONS_PER_ITEM, reasons_for_rows


@dataclass
class TopLists:
    items: np.ndarray  # (customers, k) int32 item indices, best first, -1 padded
    scores: np.ndarray  # (customers, k) float32
    reasons: np.ndarray | None = None  # (customers, k, REASONS_PER_ITEM) int32 purchases, -1 padded

    @property
    def k(self) -> int:
        return self.items.shape[1]

    def head(self, customer: int, n: int, allowed: np.ndarray | None, n_items: int) -> tuple[slice | np.ndarray, list[int], list[float]] | None:
        """(places in the cached list, item indices, scores) of the customer's answer, or None
        when the cache cannot serve it: the filters leave fewer than ``n`` cached items, the
        list does not hold the whole catalog of ``n_items``, and it was not cut short. A list
        cut short (-1 at its end, or a score of 0 in lists saved before such items were cut at
        training) holds every unbought item with evidence, so its short answer is the live
        answer less the popular top-up."""
        items = self.items[customer]
        if allowed is None and n <= len(items):
            # The storefront's usual request: the head of the list, read as Python lists at
            # once, because each numpy call inside a request costs a microsecond or more.
            head, scores = items[:n].tolist(), self.scores[customer, :n].tolist()
            if head[-1] >= 0 and 0.0 not in scores:
                return slice(0, n), head, scores
        cut_items, cut_scores = (row[0] for row in drop_unsupported(items[None], self.scores[customer][None]))
        keep = cut_items >= 0
        if allowed is not None:
            keep &= allowed[np.maximum(cut_items, 0)]
        places = np.flatnonzero(keep)
        if len(places) < min(n, n_items) and len(items) < n_items and cut_items[-1] >= 0:
            return None
        places = places[:n]
        return places, cut_items[places].tolist(), cut_scores[places].tolist()

    def reasons_at(self, customer: int, places) -> list[list[int]]:
        """The stored purchases behind the items at ``places``, padding dropped."""
        # Padding (-1) only ever follows the stored reasons, so a full row needs no filtering.
        return [because if because[-1] >= 0 else [j for j in because if j >= 0] for because in self.reasons[customer, places].tolist()]


def compute_top_lists(
    algorithm,
    history,
    k: int = 50,
    *,
    chunk_rows: int | None = None,
    progress: Callable[[int], None] | None = None,
    reasons: bool = True,
    workers: int = 1,
) -> TopLists:
    """Score every training customer in chunks and keep their top ``k`` unbought items, and
    with ``reasons`` the purchases behind each. ``workers`` threads score chunks side by
    side, each with one BLAS thread (the sparse and small-matrix steps do not parallelise inside)."""
    n_customers, n_items = history.shape
    k = min(int(k), n_items)
    chunk_rows = chunk_rows or max(1, (1 << 24) // max(n_items, 1))
    top_items = np.empty((n_customers, k), dtype=np.int32)
    top_scores = np.empty((n_customers, k), dtype=np.float32)
    top_reasons = np.full((n_customers, k, REASONS_PER_ITEM), -1, dtype=np.int32) if reasons else None
    explained = reasons

    def score(customers: np.ndarray) -> None:
        nonlocal explained
        rows = history[customers]
        items, scores = drop_unsupported(*algorithm.recommend(rows, k, customers=customers))
        top_items[customers], top_scores[customers] = items, scores
        if explained:
            found = reasons_for_rows(algorithm, rows, customers, items)
            if found is None:
                explained = False  # answers are then explained live, one customer at a time
            else:
                top_reasons[customers] = found
        if progress:
            progress(len(customers))

    chunks = [np.arange(start, min(n_customers, start + chunk_rows)) for start in range(0, n_customers, chunk_rows)]
    if workers <= 1:
        for customers in chunks:
            score(customers)
    else:
        with threadpool_limits(1, "blas"), ThreadPoolExecutor(workers, thread_name_prefix="top-lists") as pool:
            list(pool.map(score, chunks))  # list(): re-raises a chunk's exception here
    return TopLists(top_items, top_scores, top_reasons if explained else None)
