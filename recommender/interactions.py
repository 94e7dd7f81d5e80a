"""The customer x item matrix that every algorithm trains on.

Cell (u, i) holds the *confidence weight* of customer u for item i:

    weight(u, i) = sum over u's events on i of  event_weight[event_type] * quantity

so a customer who bought an item three times weighs it 3, a view weighs 0.1 by
default. Algorithms decide how to use the weight (ALS scales it into a confidence,
item-based models treat any positive weight as a signal).

A :class:`~recommender.weights.HistoryWeighting` says what history means for a store,
here and only here: each event is decayed by its age (a half-life), returns are
netted out of the purchases (:func:`~recommender.weights.net_returns`), and the
summed weight is counted as the repeats rule says. Cells that end at 0 (an item
fully returned) are not interactions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .purchases import PurchaseLog
from .vocabulary import IdVocabulary
from .weights import HistoryWeighting, net_returns


@dataclass
class Interactions:
    """Vocabularies plus a CSR matrix of summed weights (customers x items)."""

    customers: IdVocabulary
    items: IdVocabulary
    matrix: sp.csr_matrix
    # The cells of ``matrix`` with no purchase among their events (only views, clicks or carts),
    # same shape; None when there are none. Reasons call these items viewed, not bought.
    browsed: sp.csr_matrix | None = None

    @classmethod
    def from_log(cls, log: PurchaseLog, weighting: HistoryWeighting | None = None) -> Interactions:
        """The matrix of ``log`` under ``weighting`` (default: summed event weights, as they are)."""
        weighting = weighting or HistoryWeighting()
        shape = (len(log.customers), len(log.items))
        decay = weighting.decay(log.timestamp)
        returned = log.weight < 0
        if decay is None and not returned.any():
            matrix = sp.csr_matrix((log.weight.astype(np.float32), (log.customer_index, log.item_index)), shape=shape, dtype=np.float32)
            matrix.sum_duplicates()  # the fast path (20M events): plain sums, no cell keys
        else:
            cells, cell_of_event = np.unique(log.customer_index.astype(np.int64) * shape[1] + log.item_index, return_inverse=True)
            weight = log.weight.astype(np.float64)
            bought = np.maximum(weight, 0.0)
            totals = [np.bincount(cell_of_event, weights=w, minlength=len(cells)) for w in (bought, bought * decay if decay is not None else bought, np.maximum(-weight, 0.0))]
            summed = net_returns(totals[0], totals[2], totals[1])
            matrix = sp.csr_matrix((summed.astype(np.float32), (cells // shape[1], cells % shape[1])), shape=shape, dtype=np.float32)
        if weighting.repeats != "count":
            matrix.data = weighting.repeated(matrix.data).astype(np.float32)
        matrix.eliminate_zeros()  # events whose type weighs nothing, items fully returned: not interactions
        matrix.sort_indices()
        return cls(log.customers, log.items, matrix, browsed_cells(log, matrix))

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    @property
    def nnz(self) -> int:
        return int(self.matrix.nnz)

    def fingerprint(self) -> str:
        """A sha256 over ids and matrix contents: same data, same fingerprint."""
        digest = hashlib.sha256()
        for part in (self.customers.ids, self.items.ids):
            digest.update("\x1f".join(part.tolist()).encode())
        for array in (self.matrix.indptr, self.matrix.indices, self.matrix.data):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def repeat_purchases(train: sp.csr_matrix, test: sp.csr_matrix) -> dict[str, float]:
    """How much of the test period's buying is buying again: test (customer, item) pairs
    whose item the customer already has in train, and customers with at least one such.

    Recommendations exclude what a customer bought, so these pairs cannot be hit unless
    purchased items are allowed (``include_purchased``): on a time split, their share is
    what a store would win from "buy again" lists, and a ceiling on recall without them.
    """
    test = sp.csr_matrix(test, dtype=bool)
    again = test.multiply(sp.csr_matrix(train, dtype=bool)).tocsr()
    again.eliminate_zeros()
    customers = np.diff(test.indptr) > 0
    pairs, repeats = int(test.nnz), int(again.nnz)
    with_repeats = int((np.diff(again.indptr) > 0).sum())
    return {
        "test_pairs": pairs,
        "repeat_pairs": repeats,
        "repeat_share": repeats / pairs if pairs else 0.0,
        "test_customers": int(customers.sum()),
        "customers_with_repeats": with_repeats,
        "customers_with_repeats_share": with_repeats / int(customers.sum()) if customers.any() else 0.0,
    }


def browsed_cells(log: PurchaseLog, matrix: sp.csr_matrix) -> sp.csr_matrix | None:
    """The cells of ``matrix`` (built from ``log``) that no purchase reached, as a sorted CSR
    of ones (int8); None when every cell has one. A cell counts as bought while its purchases
    outweigh its returns (a fully returned item, viewed since, was only viewed)."""
    if log.bought is None:
        return None
    rows = log.bought
    # float64 sums: purchases count up, returns (negative weights) down, and no count overflows.
    purchased = sp.csr_matrix((log.weight[rows].astype(np.float64), (log.customer_index[rows], log.item_index[rows])), shape=matrix.shape)
    purchased.sum_duplicates()
    present = sp.csr_matrix((np.ones(matrix.nnz, dtype=np.int8), matrix.indices, matrix.indptr), shape=matrix.shape)
    browsed = present - present.multiply(purchased > 0)
    browsed.eliminate_zeros()
    if not browsed.nnz:
        return None
    browsed.sort_indices()
    return sp.csr_matrix(browsed, dtype=np.int8)
