"""One customer's graph-filter answer, scored and explained with the least memory traffic.

A live answer (a customer with events newer than the model) is one history row. The
batch formulas of :mod:`.graph_filter` and :mod:`.graph_filter_attribution` are right
for thousands of rows, but for one row their cost is passes over V (41k x 820 float32,
134 MB on Gowalla) and dozens of scipy calls. Here the same sums are taken in another order:

- the top-n (:func:`row_top`) reads V's first HEAD_DIRECTIONS columns for every item and
  bounds the rest of each score (Cauchy-Schwarz); only items whose bound reaches the n-th
  best score get their whole row read. On Gowalla that is a median 3% of the catalogue
  (docs/benchmarks.md), so no pass over V at all. It needs both parts' weights before any
  pass, so it serves models whose low-pass part is divided by its L2 norm (known in the
  basis); an older folder's |I(r)|₁ is a sum over every item, and its answers take
  :func:`row_scores`, which reads V once (every dense part of the score is a product with
  Vᵀ, taken block by block of V's rows by :func:`products`);
- the walk L(r) is two gathers over the purchase lists (numpy, no sparse products);
- the reasons are computed only for the shown items, and the step's share needs
  (V_i Σ₁²) G for those items (shown x rank²), never V G for the whole catalog.

The results are those of the batch formulas up to float32 rounding (the sums run in a
different order); tests/test_graph_filter_live.py compares items, scores and reasons.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# Leading directions of V a pruned live answer scores for every item (:func:`row_top`); the
# rest of each score is bounded. On Gowalla (rank 820, n = 20) a median 1,494 of 40,981 items
# (p90 4,686) then needed their whole row with 64, 581 with 256, 18,130 with none
# (``research/live_prune.py``, 2026-12-02); the head is an items x 64 float32 copy (10 MB).
HEAD_DIRECTIONS = 64
# The candidates' later looks: their terms up to each of these directions, each followed by
# the bound on the rest, before whole rows. With the exact threshold 581 items stayed in reach
# at 256 against 1,494 at 64 (same research); looks at 256 and 512 gave the fastest answers of
# seven sets tried (median 5.4 ms, p99 12.1 ms against 6.5 and 19.9 with none; 150 answers).
LATER_LOOKS = (256, 512)
# Above this share of the catalogue a gather of whole rows costs more than one pass over V.
PRUNED_SHARE_LIMIT = 0.25
FIRST_GUESS = 4  # times n: the items scored in full first, for the threshold

# Rows of V per block of :func:`products`: 256 x 820 float32 is 840 kB, inside a 1 MB L2 cache
# (measured on the 2-core EPYC: 128-512 about equal, 2048 and above as slow as separate passes).
BLOCK_ROWS = 256


def history_items(row: sp.csr_matrix) -> np.ndarray:
    """The distinct items of one history row (any stored weight counts as one purchase)."""
    return np.unique(row.indices).astype(np.int64)


def walk(model, items: np.ndarray) -> np.ndarray:
    """L(r) of the binary history with ``items``, dense (float64): history -> co-buyers -> items."""
    bought_by, buyers = model.bought_by_, model.buyers_
    co_buyers, counts = _gather(bought_by, items)
    weights = np.repeat(model.history_weight_[items].astype(np.float64), counts)
    reach = np.bincount(co_buyers, weights=weights, minlength=buyers.shape[0])  # per co-buyer: Σ_j a_j R_vj
    reached = np.flatnonzero(reach)
    bought, counts = _gather(buyers, reached)
    weights = np.repeat(reach[reached] * model.co_buyer_weight_[reached], counts)
    # float64 even when nothing is reached (bincount of nothing gives integers)
    result = np.bincount(bought, weights=weights, minlength=buyers.shape[1]).astype(np.float64, copy=False)
    result *= model.result_weight_
    return result


def _gather(matrix: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The column indices of ``rows`` of a CSR matrix, concatenated, and each row's count
    (one vectorised gather: a Python loop over ten thousand co-buyers costs milliseconds)."""
    starts, counts = matrix.indptr[rows], np.diff(matrix.indptr)[rows]
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    return matrix.indices[offsets + np.arange(int(counts.sum()))], counts


def row_scores(model, row: sp.csr_matrix) -> np.ndarray:
    """:meth:`GraphFilter.scores` of a single history row (1 x items, float32), V read once."""
    items = history_items(row)
    normalise = model.config.normalise_parts
    walked = walk(model, items)
    walk_norm = _norm(walked) if normalise else 1.0
    vectors = model.singular_vectors_
    if not vectors.shape[1]:
        return (walked / walk_norm).astype(np.float32)[None, :]
    if weights_known(model):
        # The low-pass divisor is known in the basis: the step is one vector, two products in all.
        projected, share, step = _in_basis(model, row, items, walk_norm)
        if step is None:
            return (walked / walk_norm + share * (vectors @ projected) * model.low_rank_out_).astype(np.float32)[None, :]
        dense = products(vectors, np.stack([projected, step]))
        scores = walked / walk_norm + share * (dense[0] * model.low_rank_out_) - model.sharpening_ * dense[1]
        return scores.astype(np.float32)[None, :]
    # An older folder: |I(r)|₁ needs the low-pass part over every item first, so three products.
    projected = model.low_rank_in_[items] @ vectors[items]  # x = r D_i^-½ V
    sharpened = bool(model.sharpening_) and model.walk_basis_.shape[1] > 0
    step_weights = model.step_weights_
    walk_in_basis = model.history_weight_[items] @ model.walk_basis_[items] if sharpened else None  # (r D_i^-a) W
    if sharpened:
        stacked = np.stack([projected, walk_in_basis * step_weights, (projected @ model.low_rank_gram_) * step_weights])
    else:
        stacked = projected[None, :]
    dense = products(vectors, stacked)  # (1 or 3) x items, V read once
    smooth = dense[0] * model.low_rank_out_
    smooth_norm = float(np.abs(smooth).sum(dtype=np.float64)) or 1.0
    model.recent_smooth_norms.remember(_binary(row), np.array([smooth_norm]))  # for explaining this row next
    share = model.config.low_rank_weight / smooth_norm
    scores = walked / walk_norm + share * smooth
    if sharpened:
        scores -= model.sharpening_ * (dense[1] / walk_norm + share * dense[2])
    return scores.astype(np.float32)[None, :]


def weights_known(model) -> bool:
    """Whether both parts' weights are known in the basis, before any pass over V: the low-pass
    part is divided by its L2 norm (or not normalised at all)."""
    return bool(model.norm_ratio_) or not model.config.normalise_parts


def can_prune(model) -> bool:
    """Whether :func:`row_top` applies: weights known, and a basis larger than its head."""
    return weights_known(model) and model.singular_vectors_.shape[1] > HEAD_DIRECTIONS


def _in_basis(model, row: sp.csr_matrix, items: np.ndarray, walk_norm: float) -> tuple[np.ndarray, float, np.ndarray | None]:
    """For a model whose weights are known: x = r D_i^-½ V, the low-pass part's weight
    w / (c·|I(r)|₂), and the sharpening step in the basis, (L(r)/|L|₁ + share·I(r)) V Σ₁²
    (None when sharpening is off), of ``row``'s binary history (``items``). The divisor
    c·|I(r)|₂ is remembered for explaining this row next (:func:`_part_norms`)."""
    vectors = model.singular_vectors_
    projected = model.low_rank_in_[items] @ vectors[items]
    divisor = 1.0
    if model.config.normalise_parts:
        divisor = float(model.basis_norms(projected))
        model.recent_smooth_norms.remember(row, np.array([divisor]))  # the key reads only which items, not weights
    share = model.config.low_rank_weight / divisor
    if not model.sharpening_ or not model.walk_basis_.shape[1]:
        return projected, share, None
    walk_in_basis = model.history_weight_[items] @ model.walk_basis_[items] / walk_norm  # (r D_i^-a) W / |L|₁
    return projected, share, (walk_in_basis + share * (projected @ model.low_rank_gram_)) * model.step_weights_


class PrunedItems:
    """What :func:`row_top` keeps per model: the leading directions of V, contiguous, and, for
    each look, the norm of the rest of each item's row."""

    def __init__(self, vectors: np.ndarray):
        rank = vectors.shape[1]
        self.ends = sorted({min(end, rank) for end in (HEAD_DIRECTIONS, *LATER_LOOKS, rank)})
        self.head = np.ascontiguousarray(vectors[:, : self.ends[0]])
        self.rest_norms = [np.linalg.norm(vectors[:, end:].astype(np.float64), axis=1).astype(np.float32) for end in self.ends[:-1]]


def row_top(model, row: sp.csr_matrix, n: int, exclude_seen: bool, allowed: np.ndarray | None):
    """The top-``n`` items and scores of one history row (1 x n each) without a pass over V, or
    None when pruning would not pay (the caller scores the row in full).

    Every score is walk_i + V_i·(out_i y - z) with y (the low-pass part's weight times x) and z
    (the sharpening step) known before any pass. The first HEAD_DIRECTIONS terms of the dot
    product are taken for every item; the rest lies within ±|V_i,rest| |out_i y_rest - z_rest|
    (Cauchy-Schwarz; the norm is a quadratic in out_i, so a few vector operations over the
    catalogue). The n-th best score among any items is at most the n-th best of all, so only
    items whose upper bound reaches it can be in the answer. Those get later looks (the terms
    up to each of LATER_LOOKS, the same bound on the rest), and only the items still in reach
    are scored in full."""
    items = history_items(row)
    normalise = model.config.normalise_parts
    walked = walk(model, items)
    walk_norm = _norm(walked) if normalise else 1.0
    walked /= walk_norm
    vectors, out = model.singular_vectors_, model.low_rank_out_
    projected, share, step = _in_basis(model, row, items, walk_norm)
    y = (share * projected).astype(np.float32)
    z = np.zeros_like(y) if step is None else (model.sharpening_ * step).astype(np.float32)
    pruned = model.pruned_items()
    both = np.stack([y, z], axis=1)  # rank x 2: one matrix product per gather
    walked = walked.astype(np.float32)
    # One product with both vectors reads the 10 MB head once: from a cold cache, as a server
    # meets it, 2.1 ms against 2.4 ms for two matrix-vector products (warm, the two are faster).
    head = pruned.head @ both[: pruned.ends[0]]
    partial = walked + out * head[:, 0] - head[:, 1]
    room = np.float32(1e-6 * float(np.abs(partial).max(initial=0.0)))  # for float32 rounding of the sums

    def slack(look: int, rows: np.ndarray | slice) -> np.ndarray:
        """How far the terms after look ``look`` can move each score of ``rows``, at most."""
        y_rest, z_rest = y[pruned.ends[look] :].astype(np.float64), z[pruned.ends[look] :].astype(np.float64)
        a, b, c = (np.float32(v) for v in (y_rest @ y_rest, y_rest @ z_rest, z_rest @ z_rest))
        weight = out[rows]
        return pruned.rest_norms[look][rows] * np.sqrt(np.maximum(weight * (weight * a - 2 * b) + c, 0.0)) * np.float32(1 + 1e-4) + room

    upper = partial + slack(0, slice(None))
    blocked = np.zeros(len(partial), dtype=bool) if allowed is None else ~allowed
    if exclude_seen:
        blocked[row.indices] = True
    upper[blocked] = -np.inf
    if len(partial) - int(blocked.sum()) < FIRST_GUESS * n:
        return None  # few eligible items: the full path scores them (and pads a short list)
    # The items with the best head-and-walk estimates, scored in full, give a threshold at most
    # the n-th best score; then every other item whose upper bound reaches it.
    estimate = partial.copy()
    estimate[blocked] = -np.inf
    guessed = np.argpartition(estimate, len(partial) - FIRST_GUESS * n)[len(partial) - FIRST_GUESS * n :]
    dense = np.take(vectors, guessed, axis=0) @ both  # take: a third faster than indexing
    guessed_scores = walked[guessed] + out[guessed] * dense[:, 0] - dense[:, 1]
    threshold = np.partition(guessed_scores, len(guessed) - n)[len(guessed) - n]
    upper[guessed] = -np.inf
    more = np.flatnonzero(upper >= threshold)
    if len(more) > PRUNED_SHARE_LIMIT * len(partial):
        return None
    scores = partial[more]
    for look in range(1, len(pruned.ends)):
        start, end = pruned.ends[look - 1], pruned.ends[look]
        piece = vectors[more, start:end] @ both[start:end]  # indexing a column range: 4x faster than take here
        scores = scores + out[more] * piece[:, 0] - piece[:, 1]
        if end < vectors.shape[1]:
            kept = scores + slack(look, more) >= threshold
            more, scores = more[kept], scores[kept]
    candidates = np.concatenate([guessed, more])
    scores = np.concatenate([guessed_scores, scores])
    order = np.lexsort((candidates, -scores))[:n]  # the best first; ties by item index, as top_k
    return candidates[order][None, :].astype(np.int64), scores[order].astype(np.float32)[None, :]


def products(vectors: np.ndarray, stacked: np.ndarray, block_rows: int = BLOCK_ROWS) -> np.ndarray:
    """``stacked @ vectors.T`` for a few rows of ``stacked``, reading ``vectors`` from memory once:
    block by block, each block's matrix-vector products while it is in the core's cache.
    (A matrix product with 2-4 columns cost 2-4 separate passes here: OpenBLAS copies V into
    its packing buffers; three passes cost 3x one, blocks of 256 rows about 1.6x.)"""
    if len(stacked) == 1:
        return (vectors @ stacked[0])[None, :]
    result = np.empty((len(stacked), vectors.shape[0]), dtype=np.result_type(vectors, stacked))
    for start in range(0, vectors.shape[0], block_rows):
        block = vectors[start : start + block_rows]
        for row, vector in enumerate(stacked):
            np.dot(block, vector, out=result[row, start : start + block_rows])
    return result


def row_contributions(model, row: sp.csr_matrix, asked: np.ndarray, customer: int = -1) -> np.ndarray:
    """:meth:`GraphFilter.contributions` of a single history row: (asked, purchases) shares,
    purchases in the row's index order (as the batch attribution gives them)."""
    row = sp.csr_matrix(row, dtype=np.float32)
    asked = np.asarray(asked, dtype=np.int64)
    if row.nnz == 0 or len(asked) == 0:
        return np.zeros((len(asked), row.nnz), dtype=np.float32)
    purchased = row.indices.astype(np.int64)
    walk_norm, smooth_norm = _part_norms(model, row, purchased, customer)
    share = model.config.low_rank_weight / smooth_norm
    weights = walk_paths(model, purchased, asked)
    weights *= model.history_weight_[purchased][None, :] * model.result_weight_[asked][:, None] / walk_norm
    vectors = model.singular_vectors_
    if vectors.shape[1]:
        asked_rows, purchase_rows = vectors[asked], vectors[purchased]
        smooth = (asked_rows @ purchase_rows.T).astype(np.float64)
        weights += smooth * (model.low_rank_in_[purchased][None, :] * model.low_rank_out_[asked][:, None] * share)
        if model.sharpening_ and model.walk_basis_.shape[1]:
            stepped = asked_rows * model.step_weights_  # V_i Σ₁²
            walk_step = stepped @ model.walk_basis_[purchased].T * (model.history_weight_[purchased] / walk_norm)
            # (V_i Σ₁² G) V_jᵀ: G (rank x rank) multiplies whichever side has fewer rows.
            if len(asked) <= len(purchased):
                through_gram = (stepped @ model.low_rank_gram_) @ purchase_rows.T
            else:
                through_gram = stepped @ (purchase_rows @ model.low_rank_gram_.T).T
            smooth_step = through_gram * (model.low_rank_in_[purchased] * share)
            weights -= model.sharpening_ * (walk_step + smooth_step)
    return weights.astype(np.float32)


def walk_paths(model, purchased: np.ndarray, asked: np.ndarray) -> np.ndarray:
    """Σ_v R_vj b_v R_vi for each asked item i and purchase j (asked x purchases, float64):
    read from the co-buying matrix where the model holds one (a small catalogue), else the
    co-buyers of both, joined on the customer by sorting (a handful of numpy calls where
    sparse products cost a dozen scipy calls)."""
    held = model.co_buying_paths(purchased[None, :], asked[:, None])
    if held is not None:
        return held
    asked_buyers, counts = _gather(model.bought_by_, asked)
    order = np.argsort(asked_buyers, kind="stable")
    asked_buyers, asked_owner = asked_buyers[order], np.repeat(np.arange(len(asked)), counts)[order]
    buyers, counts = _gather(model.bought_by_, purchased)
    owner = np.repeat(np.arange(len(purchased)), counts)
    first, last = np.searchsorted(asked_buyers, buyers, "left"), np.searchsorted(asked_buyers, buyers, "right")
    matches = last - first
    starts = np.repeat(first - np.concatenate([[0], np.cumsum(matches)[:-1]]), matches)
    pairs = starts + np.arange(int(matches.sum()))  # places in the asked lists, one per path
    cells = asked_owner[pairs] * len(purchased) + np.repeat(owner, matches)
    through = np.repeat(model.co_buyer_weight_[buyers].astype(np.float64), matches)
    paths = np.bincount(cells, weights=through, minlength=len(asked) * len(purchased)).astype(np.float64, copy=False)
    return paths.reshape(len(asked), len(purchased))


def _part_norms(model, row: sp.csr_matrix, purchased: np.ndarray, customer: int) -> tuple[float, float]:
    """|L(r)|₁ and the low-pass divisor of one row, as :func:`.graph_filter_attribution.part_norms` gives them."""
    if not model.config.normalise_parts:
        return 1.0, 1.0
    walk_norm = float(model.history_weight_[purchased].astype(np.float64) @ model.walk_mass()[purchased]) or 1.0
    if not model.singular_vectors_.shape[1]:
        return walk_norm, 1.0
    if model.norm_ratio_:  # in the basis, from the row's items (no sparse product: a third of the reasons' time)
        known = model.recent_smooth_norms.recall(row)  # the row just scored by row_top or row_scores
        if known is not None:
            return walk_norm, float(known[0])
        items = history_items(row)
        return walk_norm, float(model.basis_norms(model.low_rank_in_[items] @ model.singular_vectors_[items]))
    if customer >= 0 and len(model.smooth_norms_):
        return walk_norm, float(model.smooth_norms_[customer])
    return walk_norm, float(model.smooth_norms(row)[0])


def _binary(row: sp.csr_matrix) -> sp.csr_matrix:
    binary = sp.csr_matrix(row, dtype=np.float32, copy=True)
    binary.data[:] = 1.0
    return binary


def _norm(values: np.ndarray) -> float:
    total = float(np.abs(values).sum())
    return total or 1.0
