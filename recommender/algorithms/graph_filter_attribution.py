"""Why graph-filter listed an item: each score split exactly over the purchases behind it.

Every part of the score (walk, low-pass, sharpening step) is linear in the history row,
so a purchase's share is its own term of each sum. These functions compute those shares
for one customer (``contributions``) or for many at once (``top_contributors``, used for
the top lists' reasons); ``model`` is a fitted :class:`GraphFilter`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import scipy.sparse as sp

from ..ranking import similar_length_batches, strongest_purchases

FEW_PURCHASES = 1024  # up to this many, attribution multiplies rows by G instead of caching V G


def contributions(model, history_row: sp.csr_matrix, items: np.ndarray, customer: int = -1) -> np.ndarray:
    """GraphFilter.contributions: (items, purchases) shares that add up to each score."""
    history_row = sp.csr_matrix(history_row, dtype=np.float32)
    items = np.asarray(items)
    if history_row.nnz == 0 or len(items) == 0:
        return np.zeros((len(items), history_row.nnz), dtype=np.float32)
    walk_norms, smooth_norms = part_norms(model, history_row, np.array([customer]))
    _, weights = batch_contributions(model, history_row, items[None, :], walk_norms, smooth_norms)
    return weights[0].astype(np.float32)


def top_contributors(model, history: sp.csr_matrix, customers: np.ndarray, items: np.ndarray, per_item: int = 2) -> np.ndarray:
    """GraphFilter.top_contributors: the strongest purchases behind each listed item, batched."""
    # The same attribution as `contributions`, for many customers at once: the per-call
    # overhead of scipy, not arithmetic, dominated one customer at a time (~0.8 ms each).
    history = sp.csr_matrix(history, dtype=np.float32)
    items = np.asarray(items)
    customers = np.asarray(customers)
    found = np.full((*items.shape, per_item), -1, dtype=np.int32)
    # For the whole batch at once: when it has just been scored, its |I(r)|₁ are remembered.
    walk_norms, smooth_norms = part_norms(model, history, customers)
    for rows in similar_length_batches(np.diff(history.indptr)):
        purchased, weights = batch_contributions(model, history[rows], items[rows], walk_norms[rows], smooth_norms[rows])
        weights[items[rows] < 0] = 0.0
        found[rows] = strongest_purchases(weights, purchased[:, None, :], per_item)
    found[items < 0] = -1
    return found


def contribution_weights(model, history: sp.csr_matrix, customers: np.ndarray, items: np.ndarray) -> np.ndarray:
    """GraphFilter.contribution_weights: every row's shares in one batch (callers bound its
    size, as :func:`top_contributors` does)."""
    history = sp.csr_matrix(history, dtype=np.float32)
    items, customers = np.asarray(items), np.asarray(customers)
    lengths = np.diff(history.indptr)
    weights = np.zeros((*items.shape, int(lengths.max(initial=0))), dtype=np.float64)
    rows = np.flatnonzero(lengths > 0)
    if len(rows):
        walk_norms, smooth_norms = part_norms(model, history[rows], customers[rows])
        _, found = batch_contributions(model, history[rows], items[rows], walk_norms, smooth_norms)
        weights[rows, :, : found.shape[2]] = found
    weights[items < 0] = 0.0
    return weights


def batch_contributions(
    model, history: sp.csr_matrix, asked: np.ndarray, walk_norms: np.ndarray, smooth_norms: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per customer, their purchases (-1 padded) and contributions (customers, asked, purchases);
    the norms are the rows' :meth:`_part_norms`."""
    rows, k = asked.shape
    lengths = np.diff(history.indptr)
    width = int(lengths.max())
    slot = np.arange(history.nnz) - np.repeat(history.indptr[:-1], lengths)  # place in its row
    owner = np.repeat(np.arange(rows), lengths)
    purchased = np.full((rows, width), -1, dtype=np.int64)
    purchased[owner, slot] = history.indices
    asked_safe = np.maximum(asked, 0)
    safe_purchased = np.maximum(purchased, 0)
    walk = model.co_buying_paths(safe_purchased[:, None, :], asked_safe[:, :, None])  # rows x asked x purchases
    if walk is None:
        walk = _walk_paths(model, history, asked_safe, owner, slot, width)
    walk *= model.history_weight_[safe_purchased][:, None, :] * model.result_weight_[asked_safe][:, :, None]
    vectors = model.singular_vectors_
    smooth = (vectors[asked_safe] @ vectors[safe_purchased].transpose(0, 2, 1)).astype(np.float64)
    smooth *= model.low_rank_in_[safe_purchased][:, None, :] * model.low_rank_out_[asked_safe][:, :, None]
    walk /= walk_norms[:, None, None]
    smooth *= model.config.low_rank_weight / smooth_norms[:, None, None]
    weights = walk + smooth
    if model.sharpening_ and model.walk_basis_.shape[1]:
        # Purchase j's share of the step: its own blend row in the basis, (B_j V) Σ₁² V_iᵀ.
        own = model.walk_basis_[safe_purchased] * (model.history_weight_[safe_purchased] / walk_norms[:, None])[..., None]
        batched = history.nnz > FEW_PURCHASES and rows > 1
        gram_rows = model.gram_rows()[safe_purchased] if batched else vectors[safe_purchased] @ model.low_rank_gram_
        own += gram_rows * (model.low_rank_in_[safe_purchased] * (model.config.low_rank_weight / smooth_norms[:, None]))[..., None]
        step = (vectors[asked_safe] * model.step_weights_) @ own.transpose(0, 2, 1)  # rows x asked x purchases
        weights -= model.sharpening_ * step
    weights[np.broadcast_to((purchased < 0)[:, None, :], weights.shape)] = 0.0
    return purchased, weights


def _walk_paths(model, history: sp.csr_matrix, asked: np.ndarray, owner: np.ndarray, slot: np.ndarray, width: int) -> np.ndarray:
    """Σ_v R_vj b_v R_vi per row, asked item and purchase slot, through the customers (for
    catalogues whose co-buying matrix is not held)."""
    rows, k = asked.shape
    # Co-buyer columns are offset per row (row * V + v), so one sparse product pairs each
    # purchase only with its own row's asked items.
    customers = np.int64(model.bought_by_.shape[1])
    from_purchase = model.bought_by_[history.indices].multiply(model.co_buyer_weight_[None, :]).tocsr()
    from_asked = model.bought_by_[asked.ravel()].tocsr()
    asked_owner = np.repeat(np.arange(rows), k)
    left = sp.csr_matrix(
        (
            from_purchase.data,
            np.repeat(owner * customers, np.diff(from_purchase.indptr)) + from_purchase.indices,
            from_purchase.indptr,
        ),
        shape=(history.nnz, rows * customers),
    )
    right = sp.csr_matrix(
        (from_asked.data, np.repeat(asked_owner * customers, np.diff(from_asked.indptr)) + from_asked.indices, from_asked.indptr),
        shape=(rows * k, rows * customers),
    )
    paths = (left @ right.T).tocoo()
    walk = np.zeros((rows, k, width), dtype=np.float64)
    walk[owner[paths.row], paths.col % k, slot[paths.row]] = paths.data
    return walk


def part_norms(model, history: sp.csr_matrix, customers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|L(r)|₁ and the low-pass divisor per row (ones when the parts are not normalised),
    without the walk: |L(r)|₁ = Σ_j a_j · mass_j. The divisor c·|I(r)|₂ is computed in the
    basis; an older folder's |I(r)|₁ comes from the scoring of these rows just before, when
    there was one, or from its stored training norms."""
    rows = history.shape[0]
    if not model.config.normalise_parts:
        return np.ones(rows), np.ones(rows)
    binary = sp.csr_matrix(history, dtype=np.float32, copy=True)
    binary.data[:] = 1.0
    walk_norms = binary @ (model.history_weight_ * model.walk_mass())
    walk_norms[walk_norms == 0] = 1.0
    smooth_norms = np.ones(rows)
    if model.singular_vectors_.shape[1]:
        stored = (customers >= 0) & (len(model.smooth_norms_) > 0)
        smooth_norms[stored] = model.smooth_norms_[customers[stored]]
        if not stored.all():
            smooth_norms[~stored] = model.smooth_norms(history[np.flatnonzero(~stored)])
    return walk_norms, smooth_norms


class RecentNorms:
    """The low-pass divisors of the last few histories scored (one customer's, or a batch),
    by which items they hold.

    Explaining an answer needs the divisors its scoring has just computed. An older folder's
    |I(r)|₁ is another pass over V to recompute (a quarter of a live answer's time, and for
    the top lists of every customer about as long as the rest of the fit); c·|I(r)|₂ is two
    small products in the basis, still a twentieth of a live answer on Gowalla. Thread-safe:
    the top lists are scored and explained by several threads, each remembering its own batches."""

    KEPT = 64

    def __init__(self):
        self._norms: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(binary: sp.csr_matrix) -> bytes:
        # As int64: a row selection may hand back the same rows with narrower index arrays.
        return binary.indptr.astype(np.int64).tobytes() + b"|" + binary.indices.astype(np.int64).tobytes()

    def remember(self, binary: sp.csr_matrix, norms: np.ndarray) -> None:
        with self._lock:
            key = self._key(binary)
            self._norms[key] = norms.copy()
            self._norms.move_to_end(key)
            while len(self._norms) > self.KEPT:
                self._norms.popitem(last=False)

    def recall(self, binary: sp.csr_matrix) -> np.ndarray | None:
        with self._lock:
            key = self._key(binary)
            found = self._norms.get(key)
            if found is not None:
                self._norms.move_to_end(key)  # least recently used goes first
        return None if found is None else found.copy()
