"""The fallback of the top-N path (Gorse's chain): popular items for a customer without
history, and to top up a list the algorithm left short."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class PopularItems:
    """Items by number of training customers who bought them, most first (ties: lower index)."""

    def __init__(self, history: sp.csr_matrix):
        n_items = history.shape[1]
        self.buyers = np.bincount(history.indices, minlength=n_items).astype(np.float32)
        self.order = np.lexsort((np.arange(n_items), -self.buyers))

    def top(self, n: int, allowed: np.ndarray | None = None, skip: np.ndarray | None = None) -> np.ndarray:
        """The ``n`` most popular allowed items, less the indices in ``skip``."""
        # The answer usually lies in a short prefix of the order (without a filter, in the first
        # n + len(skip)): filtering 41k items costs tens of microseconds per served answer.
        prefix = self.order[: max(4 * (n + (0 if skip is None else len(skip))), 64)]
        chosen = _kept(prefix, allowed, skip)
        if len(chosen) >= n or len(prefix) == len(self.order):
            return chosen[:n]
        return _kept(self.order, allowed, skip)[:n]

    def fill(self, items: np.ndarray, scores: np.ndarray, rows: sp.csr_matrix, allowed: np.ndarray | None, skip_history: bool) -> np.ndarray:
        """Fill the empty (-1) slots of each row's list, in place, with popular items not already
        listed (and, with ``skip_history``, not already bought); returns a mask of the filled slots.

        Rows without any history share one list, computed once (the many unknown customers
        of a batch job cost one look-up).
        """
        filled = np.zeros(items.shape, dtype=bool)
        short = np.flatnonzero((items < 0).any(axis=1))
        shared: np.ndarray | None = None
        for row in short:
            start, end = rows.indptr[row], rows.indptr[row + 1]
            present = items[row][items[row] >= 0]
            if start == end and not len(present):
                if shared is None:
                    shared = self.top(items.shape[1], allowed)
                extra = shared
            else:
                skip = np.concatenate([present, rows.indices[start:end]]) if skip_history else present
                extra = self.top(items.shape[1] - len(present), allowed, skip)
            slots = np.flatnonzero(items[row] < 0)[: len(extra)]
            items[row, slots] = extra[: len(slots)]
            scores[row, slots] = self.buyers[extra[: len(slots)]]
            filled[row, slots] = True
        return filled


def _kept(order: np.ndarray, allowed: np.ndarray | None, skip: np.ndarray | None) -> np.ndarray:
    """``order`` less the items not allowed and those in ``skip``."""
    if allowed is not None:
        order = order[allowed[order]]
    if skip is not None and len(skip):
        order = order[~np.isin(order, skip)]
    return order
