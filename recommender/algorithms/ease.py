"""EASE: a closed-form linear item-to-item model (Steck, "Embarrassingly Shallow
Autoencoders for Sparse Data", WWW 2019).

    B = argmin ‖X − X B‖² + λ‖B‖²  subject to  diag(B) = 0
      = I − P · diag(1 / diag(P)),   P = (XᵀX + λI)⁻¹

A customer's scores are ``x B`` for their history row x, so a new purchase counts in
the next answer without refitting, and a score splits exactly over the purchases
behind it: purchase j adds x_j · B[j, i] to item i.

Why a memory limit: B is a dense items x items matrix (4 bytes a cell), and so is the
Gram matrix it is inverted from. The fit refuses a catalogue whose matrix would not
fit ``memory_limit_gb`` (41k items, Gowalla's, need 6.7 GB), with a message saying so,
rather than running the machine out of memory. Everything is done in one float32
buffer: the Gram matrix is built in column blocks, factorised and inverted in place
(LAPACK ``potrf``/``potri``), and turned into B in place.

Cells hold ``log2(1 + weight)``: 1 for a single purchase (so on binary data this is
exactly the paper's EASE), while a customer who bought one item fifty times does not
outweigh the rest of their history fiftyfold, and weights lowered for age (a recency
half-life) count for less.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from ..ranking import strongest_purchases
from .base import Algorithm, AlgorithmConfig

DEFAULT_MEMORY_LIMIT_GB = 2.0
_GRAM_BLOCK_BYTES = 256 * 2**20  # bounds the sparse column block of XᵀX built at a time
_ATTRIBUTION_CELLS = 1 << 22  # rows x asked x purchases per batched attribution


@dataclasses.dataclass
class EASEConfig(AlgorithmConfig):
    # λ: the ridge penalty. Its best value grows with the data (item degrees); the
    # automatic choice searches it relative to the mean item degree.
    l2: float = 250.0
    # The dense items x items matrix may use at most this much memory (GB).
    memory_limit_gb: float = DEFAULT_MEMORY_LIMIT_GB


def dense_item_bytes(n_items: int) -> int:
    """Bytes of one dense float32 items x items matrix, the most EASE holds at once."""
    return 4 * int(n_items) ** 2


class EASE(Algorithm):
    """Closed-form item-to-item regression with a zero diagonal (EASE)."""

    name = "ease"
    Config = EASEConfig

    def validate_config(self) -> None:
        if self.config.l2 <= 0:
            raise ValueError("l2 must be above 0 (it keeps XᵀX + λI invertible)")
        if self.config.memory_limit_gb <= 0:
            raise ValueError("memory_limit_gb must be above 0")

    @staticmethod
    def values(weights: np.ndarray) -> np.ndarray:
        """What a history cell counts for: log2(1 + weight)."""
        return np.log2(1.0 + np.asarray(weights, dtype=np.float32))

    def _fit(self, customer_items: sp.csr_matrix, *, show_progress: bool) -> None:
        n = customer_items.shape[1]
        needed = dense_item_bytes(n)
        limit = self.config.memory_limit_gb * 1e9
        if needed > limit:
            raise ValueError(
                f"ease needs a dense {n:,} x {n:,} item matrix ({needed / 1e9:.1f} GB), above its memory limit "
                f"of {self.config.memory_limit_gb:g} GB; raise memory_limit_gb (--param memory_limit_gb=...) "
                "or choose another algorithm"
            )
        x = customer_items.copy()
        x.data = self.values(x.data)
        gram = _dense_gram(x)
        gram[np.diag_indices(n)] += np.float32(self.config.l2)
        # gram is symmetric, so its C-order buffer read in Fortran order is the same
        # matrix: LAPACK factorises and inverts it in place, no second n x n copy.
        factor, info = lapack.spotrf(gram.T, lower=False, overwrite_a=True, clean=False)
        if info != 0:
            raise ValueError(f"ease: XᵀX + λI is not positive definite (LAPACK potrf info {info}); raise l2")
        inverse, info = lapack.spotri(factor, lower=False, overwrite_c=True)
        if info != 0:
            raise ValueError(f"ease: inverting XᵀX + λI failed (LAPACK potri info {info}); raise l2")
        precision = inverse.T  # the C-order view again; its lower triangle holds P
        _mirror_lower_to_upper(precision)
        diagonal = precision.diagonal().copy()
        precision /= -diagonal[None, :]  # B = I − P diag(1/diag P), column by column
        precision[np.diag_indices(n)] = 0.0
        self.weights_ = np.ascontiguousarray(precision)

    # -- scoring ------------------------------------------------------------------------
    def scores(self, history: sp.csr_matrix, customers: np.ndarray | None = None) -> np.ndarray:
        x = sp.csr_matrix(history, dtype=np.float32, copy=True)
        x.data = self.values(x.data)
        return np.asarray(x @ self.weights_, dtype=np.float32)

    def candidate_scores(self, history: sp.csr_matrix, customers: np.ndarray | None, items: np.ndarray) -> np.ndarray:
        x = sp.csr_matrix(history, dtype=np.float32, copy=True)
        x.data = self.values(x.data)
        return np.asarray(x @ self.weights_[:, items], dtype=np.float32)

    def item_similarities(self, items: np.ndarray) -> np.ndarray:
        # Row j of B: the scores of a customer who bought j alone.
        return np.array(self.weights_[np.asarray(items)], dtype=np.float32)

    # -- explanations -------------------------------------------------------------------
    def contributions(self, history_row: sp.csr_matrix, items: np.ndarray, customer: int = -1) -> np.ndarray:
        history_row = sp.csr_matrix(history_row, dtype=np.float32)
        block = self.weights_[history_row.indices][:, np.asarray(items)]  # purchases x items
        return (block * self.values(history_row.data)[:, None]).T

    def top_contributors(self, history: sp.csr_matrix, customers: np.ndarray, items: np.ndarray, per_item: int = 2) -> np.ndarray:
        # The same shares as `contributions`, gathered for many customers at once.
        history = sp.csr_matrix(history, dtype=np.float32)
        items = np.asarray(items)
        found = np.full((*items.shape, per_item), -1, dtype=np.int32)
        lengths = np.diff(history.indptr)
        order = np.argsort(lengths, kind="stable")  # similar lengths together: little padding
        start = 0
        while start < len(order):
            width = max(int(lengths[order[min(start + 255, len(order) - 1)]]), 1)
            count = max(1, min(256, _ATTRIBUTION_CELLS // (width * max(items.shape[1], 1))))
            rows = order[start : start + count]
            start += len(rows)
            rows = rows[lengths[rows] > 0]
            if not len(rows):
                continue
            block = history[rows]
            width = int(np.diff(block.indptr).max())
            slot = np.arange(block.nnz) - np.repeat(block.indptr[:-1], np.diff(block.indptr))
            owner = np.repeat(np.arange(len(rows)), np.diff(block.indptr))
            purchased = np.full((len(rows), width), -1, dtype=np.int64)
            value = np.zeros((len(rows), width), dtype=np.float32)
            purchased[owner, slot] = block.indices
            value[owner, slot] = self.values(block.data)
            asked = np.maximum(items[rows], 0)
            weights = self.weights_[np.maximum(purchased, 0)[:, None, :], asked[:, :, None]] * value[:, None, :]
            weights[items[rows] < 0] = 0.0
            found[rows] = strongest_purchases(weights, purchased[:, None, :], per_item)
        found[items < 0] = -1
        return found

    # -- persistence --------------------------------------------------------------------
    def _fitted_arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_}

    def _load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.weights_ = arrays["weights"]


def _dense_gram(x: sp.csr_matrix) -> np.ndarray:
    """XᵀX as a dense float32 items x items array, built a block of columns at a time
    (a sparse XᵀX of a dense co-purchase graph would take three times the memory)."""
    n = x.shape[1]
    gram = np.empty((n, n), dtype=np.float32)
    columns = x.tocsc()
    transposed = x.T.tocsr()
    block = max(1, _GRAM_BLOCK_BYTES // (12 * n))
    for start in range(0, n, block):
        gram[:, start : start + block] = (transposed @ columns[:, start : start + block]).toarray()
    return gram


def _mirror_lower_to_upper(matrix: np.ndarray, block: int = 1024) -> None:
    """Copy the lower triangle onto the upper one, in place, a block of rows at a time."""
    n = matrix.shape[0]
    for start in range(0, n, block):
        stop = min(start + block, n)
        # Rows start:stop, columns right of the diagonal block, come from the lower part.
        matrix[start:stop, stop:] = matrix[stop:, start:stop].T
        square = matrix[start:stop, start:stop]
        upper = np.triu_indices(stop - start, 1)
        square[upper] = square.T[upper]
