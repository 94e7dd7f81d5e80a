"""The customer x item matrix that every algorithm trains on.

Cell (u, i) holds the *confidence weight* of customer u for item i:

    weight(u, i) = sum over u's events on i of  event_weight[event_type] * quantity

so a customer who bought an item three times weighs it 3, a view weighs 0.1 by
default. Algorithms decide how to use the weight (ALS scales it into a confidence,
item-based models treat any positive weight as a signal).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .purchases import PurchaseLog
from .vocabulary import IdVocabulary


@dataclass
class Interactions:
    """Vocabularies plus a CSR matrix of summed weights (customers x items)."""

    customers: IdVocabulary
    items: IdVocabulary
    matrix: sp.csr_matrix

    @classmethod
    def from_log(cls, log: PurchaseLog) -> Interactions:
        matrix = sp.csr_matrix(
            (log.weight.astype(np.float32), (log.customer_index, log.item_index)),
            shape=(len(log.customers), len(log.items)),
            dtype=np.float32,
        )
        matrix.sum_duplicates()
        matrix.sort_indices()
        return cls(log.customers, log.items, matrix)

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


def history_rows(item_indices_per_customer: list[np.ndarray], weights_per_customer: list[np.ndarray] | None, n_items: int) -> sp.csr_matrix:
    """Build a CSR matrix, one row per customer, from lists of item indices (and weights)."""
    lengths = np.fromiter((len(x) for x in item_indices_per_customer), dtype=np.int64, count=len(item_indices_per_customer))
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = np.concatenate(item_indices_per_customer) if len(lengths) and lengths.sum() else np.zeros(0, np.int64)
    if weights_per_customer is None:
        data = np.ones(len(indices), dtype=np.float32)
    else:
        data = np.concatenate(weights_per_customer).astype(np.float32) if len(indices) else np.zeros(0, np.float32)
    rows = sp.csr_matrix((data, indices, indptr), shape=(len(lengths), n_items), dtype=np.float32)
    rows.sum_duplicates()
    return rows
