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
        matrix.eliminate_zeros()  # events whose type weighs nothing are not interactions
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

