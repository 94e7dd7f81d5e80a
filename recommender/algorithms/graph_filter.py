"""A two-part linear graph filter over the customer-item graph (closed form, no epochs).

For a customer's history row r (any positive weight counts as one purchase):

    L(r) = (r D_i^-a) Rᵀ D_u^-b R D_i^-c      a normalised two-hop walk item -> co-buyers -> items
    I(r) = (r D_i^-½ V) Vᵀ D_i^c2             the "ideal low-pass" of GF-CF (Shen et al. 2021)
    B(r) = L(r) / |L(r)|₁  +  w · I(r) / (c · |I(r)|₂)     the blend ("blurred" scores)
    score(r) = B(r) - s · B(r) V Σ₁² Vᵀ                BSPM-style sharpening (s = 0: off)

R is the binary customer x item matrix, D_u and D_i its customer and item degrees,
V Σ Uᵀ the top ``rank`` singular triplets of Ñ = D_u^-½ R D_i^-½ (randomised SVD).
``a`` damps popular items in the history, ``b`` busy co-buyers, ``c`` popular results
(a generalised RP3beta); the low-rank part adds smooth, global structure.

Why the low-pass part is divided by its L2 norm (times c, the median ratio |I|₁/|I|₂ of the
store's customers, so that w weighs it as an L1 norm would on average): |I(r)|₂² =
x Vᵀ D_i^2c2 V xᵀ with x = r D_i^-½ V is a rank x rank product, so both parts' weights are
known without a pass over the catalogue and a customer who has just bought can be answered
from what changed (:mod:`.graph_filter_live`); |I(r)|₁ needs every item's score. Accuracy on
Gowalla was the same (docs/benchmarks.md). Folders fitted before 2026-12-03 keep the L1 norm.

Why the sharpening step uses V Σ² Vᵀ, the rank-k part of the item graph P = ÑᵀÑ,
rather than P itself (as BSPM, Choi et al. 2023, does): it sharpens as well, and it
makes a purchase's share of the step a dot product in the k-dimensional basis instead
of a four-hop walk, so every cached answer can carry its reasons. Σ₁ is Σ without the
directions of singular value 1: each is the stationary walk (∝ √degree) of one
connected part of the purchase graph, and stepping along it would push a small
isolated group's own items below items its customers cannot reach at all.

Why no item x item matrix in the model: L is two sparse products (history -> co-buyers ->
items), so memory grows with the purchases, not the square of the catalogue; and every score
is a function of the history row alone, so a new purchase changes the next answer
without refitting. Scoring many rows of a small store is the exception (:meth:`item_walk`):
there the co-buying matrix Rᵀ D_u^-b R is small, and one product with it replaces the two,
held in memory only. Every term is linear in r, so a score splits exactly over the
purchases that drove it (:mod:`.graph_filter_attribution`).

The strength s and the rank (the automatic share, its half or its quarter) are chosen
at fit time on purchases held out of the training data (:mod:`.held_out`), because
stores differ. How the defaults were chosen, and what each part is worth, is in
docs/accuracy_study.md.

Public surface (what other modules, among them the one-row "live answer" path of
:mod:`.graph_filter_live`, may rely on):
the :class:`~.base.Algorithm` methods (``fit``, ``scores``, ``recommend``,
``contributions``, ``top_contributors``, ``item_similarities``, ``fitted_settings``,
``warm_up``); ``smooth_norms(history)`` and ``basis_norms(x)`` (the low-pass divisor per row), ``walk_mass()`` and
``gram_rows()`` (cached per-item quantities of the attribution), ``item_walk()`` and
``co_buying_paths(j, i)`` (a small catalogue's co-buying matrix, cached), ``pruned_items()`` (the
live answers' head of V); the fitted arrays
``buyers_`` / ``bought_by_`` (binary R and Rᵀ), ``singular_vectors_`` (V, items x rank),
``step_weights_`` (Σ₁²), ``history_weight_``, ``co_buyer_weight_``, ``result_weight_``,
``low_rank_in_``, ``low_rank_out_`` (the degree scalings), ``walk_basis_`` (W),
``low_rank_gram_`` (G), ``norm_gram_`` (G₂ = Vᵀ D_i^2c2 V), ``norm_ratio_`` (c; 0 in older folders, whose low-pass part is divided by |I(r)|₁),
``sharpening_``, ``smooth_norms_`` (stored training |I(r)|₁, older folders only) and
``recent_smooth_norms`` (the low-pass divisors of the rows just scored); and
:func:`item_basis`, the randomised basis, and :func:`remember_last_basis` (for the automatic
choice's trial worker).
Everything else (names starting with ``_``) may change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging

import numpy as np
import scipy.sparse as sp

from ..parallel import blas_threads, sparse_times_dense
from . import graph_filter_attribution as attribution
from . import graph_filter_live as live
from .base import Algorithm, AlgorithmConfig
from .held_out import best_setting, hold_out

log = logging.getLogger(__name__)

AUTOMATIC_RANK_CAP = 1024
SHARPENING_CHOICES = (0.0, 0.35, 0.7)
NORM_SAMPLE = 256  # customers whose |I|₁/|I|₂ give c
SMALL_SVD_WORK = 10**8  # purchases x rank up to which a second SVD costs a second or two
# Subspace iterations after the first product when the basis starts from another fit's
# (start_from): on Gowalla, starting from the automatic choice's trial (fitted without the
# validation purchases), none gave Recall@20 / NDCG@20 0.1899 / 0.1577 in 18.1 s and one gave
# 0.1900 / 0.1581 in 21.7 s, against 0.1894 / 0.1575 in 23.7 s from random with three
# (same run, docs/benchmarks.md): the start is already closer than three iterations get.
WARM_START_ITERATIONS = 0
# The basis's Rayleigh-Ritz step works from the block's Gram matrix (:func:`_ritz_by_gram`)
# when the QR it saves is large, items x width² from GRAM_RITZ_WORK (Gowalla 4.3e10: 5 s of QR
# on one thread; below, a QR costs under a second and keeps the basis orthonormal to float32's
# last digit, which small stores' exact answers show), and no Cholesky pivot of the Gram
# matrix (columns of unit length) is under GRAM_PIVOT_FLOOR: a column with less than that
# share of its length outside the others' span would lose digits in float32.
GRAM_RITZ_WORK = 10**9
GRAM_PIVOT_FLOOR = 1e-3
GRAM_ROWS = 8192  # items per float64 slice of the Gram matrix's product (84 MB at width 1,280)
_STATIONARY = 1 - 1e-3  # a singular value this close to 1 is a connected part's stationary walk
# When batch scoring walks through the co-buying matrix C = Rᵀ D_u^-b R instead of customers
# (:meth:`GraphFilter.item_walk`). Walking through customers repeats every path's customer:
# scoring the 5,000 customers of a store of 2,000 items took 1.84 s that way, 0.10 s as one
# product with C held dense (16 MB), and on 15,000 items 7.2 s against 2.8 s with C sparse
# (0.9M entries). Gowalla's C has 42M entries (340 MB) for 14% less time, so it walks as before.
DENSE_WALK_ITEMS = 4096  # C dense up to this many items: 64 MB of float32
SPARSE_WALK_ENTRIES = 16_000_000  # else sparse while Σ_v |R_v|², the most entries C can have, stays below (~130 MB)
# Without C, a batch's walk goes history -> co-buyers -> items. The second step is a sparse x
# sparse product (scipy, one core) whose result is dense in all but name on a dense store
# (Gowalla: 409 rows reach 2,554 co-buyers and 21,405 items each), about 19 ns per path. Held
# dense, the co-buyers' reach times Rᵀ is a sparse x dense product, about 0.9 ns per stored
# entry of R per row, split among the threads: Gowalla's batch 536 ms -> 285 ms on one thread.
# Taken when its work (rows x entries of R) is under DENSE_REACH_GAIN times the paths', and
# the dense reach (rows x customers) under DENSE_REACH_ENTRIES (128 MB of float32).
DENSE_REACH_GAIN = 10
DENSE_REACH_ENTRIES = 1 << 25


@dataclasses.dataclass
class GraphFilterConfig(AlgorithmConfig):
    history_exponent: float = 0.5  # a
    co_buyer_exponent: float = 0.5  # b
    popularity_exponent: float = 0.3  # c
    low_rank_exponent: float = 0.5  # c2
    low_rank_weight: float = 0.5  # w; 0 (with sharpening 0) turns the SVD off
    # Singular vectors kept; None: rank_share of the items, at most AUTOMATIC_RANK_CAP.
    # A filter is only low-pass if it keeps a small share of the spectrum, and the share
    # (not a count) is what held on catalogues of different sizes.
    rank: int | None = None
    rank_share: float = 0.02
    # s; None: chosen at fit from SHARPENING_CHOICES on purchases held out of the training
    # data, because the best s differs from store to store (0 on some).
    sharpening: float | None = None
    svd_iterations: int = 3
    svd_solver: str = "randomized"  # or "exact" (ARPACK), slower, for reproducing papers
    normalise_parts: bool = True  # False: score = L + w·I, exactly GF-CF's form


class GraphFilter(Algorithm):
    """Normalised co-buyer walk plus GF-CF's ideal low-pass filter, blended."""

    name = "graph-filter"
    Config = GraphFilterConfig

    def validate_config(self) -> None:
        c = self.config
        if (c.rank is not None and c.rank < 1) or c.svd_iterations < 0:
            raise ValueError("rank must be at least 1 and svd_iterations at least 0")
        if not 0 < c.rank_share <= 1:
            raise ValueError("rank_share must be above 0 and at most 1")
        if c.low_rank_weight < 0 or (c.sharpening is not None and c.sharpening < 0):
            raise ValueError("low_rank_weight and sharpening must be >= 0")
        if c.svd_solver not in ("randomized", "exact"):
            raise ValueError(f"svd_solver must be 'randomized' or 'exact', not {c.svd_solver!r}")

    def _fit(self, customer_items: sp.csr_matrix, *, show_progress: bool) -> None:
        binary = customer_items.copy()
        binary.data[:] = 1.0
        c = self.config
        self.sharpening_ = float(c.sharpening) if c.sharpening is not None else 0.0
        if c.sharpening is not None and c.rank is not None:
            self._fit_on(binary)
            return
        # Choose s and the rank on held-out purchases: fit on the rest at the largest rank,
        # score the held-out customers for every choice (a smaller rank is the first columns
        # of the same basis, so no new SVD), then refit on everything. The SVD is the costly
        # step, so a large store's final model keeps the basis of the reduced matrix, which
        # lacks only the held-out purchases (at most 2,000 customers' fifth).
        kept, customers, targets = hold_out(binary, c.random_state)
        if not len(customers):
            self._fit_on(binary)
            return
        sharpenings = SHARPENING_CHOICES if c.sharpening is None else (float(c.sharpening),)
        self.sharpening_ = max(sharpenings)  # so the sharpening basis is built
        self._fit_on(kept)
        full = self.singular_vectors_.shape[1]
        # Fewer directions first: on a tie the cheaper model wins (scoring costs grow with the rank).
        ranks = sorted({max(1, full // 4), max(1, full // 2), full}) if c.rank is None and full else [full]
        settings = [(rank, sharpening) for rank in ranks for sharpening in sharpenings]
        (rank, self.sharpening_), figures = best_setting(settings, self._blend_and_step_for, kept[customers], targets)
        shown = ", ".join(f"rank {k} s {v}: {figure:.4f}" for (k, v), figure in zip(settings, figures))
        log.info("graph-filter: rank %d, sharpening %s chosen on %d held-out customers (Recall@20 + NDCG@20: %s)",
                 rank, self.sharpening_, len(customers), shown)
        small = binary.nnz * rank <= SMALL_SVD_WORK
        unused = c.low_rank_weight == 0 and self.sharpening_ == 0  # then no SVD at all
        basis = (self.singular_vectors_[:, :rank].copy(), self.step_weights_[:rank].copy())
        self._fit_on(binary, basis=None if small or unused else basis, rank=rank, norm_ratio=self.norm_ratio_)

    def _fit_on(self, binary: sp.csr_matrix, *, basis=None, rank: int | None = None, norm_ratio: float | None = None) -> None:
        """Everything but the held-out choices; ``basis``: (V, Σ₁²) to keep instead of a new SVD;
        ``rank``: the number of directions (None: the configured or automatic rank);
        ``norm_ratio``: c, when the held-out choices were made with it (None: measured here)."""
        self._forget_derived()
        self.recent_smooth_norms = attribution.RecentNorms()
        self.buyers_ = binary  # customers x items
        self.bought_by_ = binary.T.tocsr()  # items x customers
        item_degree = np.maximum(np.asarray(binary.sum(axis=0)).ravel(), 1.0)
        customer_degree = np.maximum(np.asarray(binary.sum(axis=1)).ravel(), 1.0)
        c = self.config
        self.history_weight_ = (item_degree ** -c.history_exponent).astype(np.float32)
        self.co_buyer_weight_ = (customer_degree ** -c.co_buyer_exponent).astype(np.float32)
        self.result_weight_ = (item_degree ** -c.popularity_exponent).astype(np.float32)
        self.low_rank_in_ = (item_degree ** -0.5).astype(np.float32)
        self.low_rank_out_ = (item_degree ** c.low_rank_exponent).astype(np.float32)
        if rank is None:
            rank = c.rank if c.rank is not None else min(AUTOMATIC_RANK_CAP, max(1, round(c.rank_share * binary.shape[1])))
        rank = min(rank, min(binary.shape) - 1)
        if basis is not None:
            self.singular_vectors_, self.step_weights_ = basis
        elif (c.low_rank_weight > 0 or self.sharpening_ > 0) and rank >= 1:
            normalised = (sp.diags(customer_degree ** -0.5) @ binary @ sp.diags(item_degree ** -0.5)).tocsr()
            if c.svd_solver == "exact":
                from scipy.sparse.linalg import svds

                start = np.random.default_rng(c.random_state).standard_normal(min(normalised.shape))
                _, values, right = svds(normalised.astype(np.float64), k=rank, v0=start)
            elif (start := self._start_vectors(binary.shape[1], rank)) is not None:
                values, vectors = item_basis(normalised.astype(np.float32), rank, WARM_START_ITERATIONS, c.random_state, start=start)
                right = vectors.T
                self.warm_started_ = True
            else:
                values, vectors = _remembered_basis(normalised.astype(np.float32), rank, c.svd_iterations, c.random_state)
                right = vectors.T
            self.singular_vectors_ = np.ascontiguousarray(right.T, dtype=np.float32)
            # σ² per direction, 0 for the stationary ones (σ = 1 up to the SVD's rounding).
            self.step_weights_ = np.where(values < _STATIONARY, values**2, 0.0).astype(np.float32)
        else:
            self.singular_vectors_ = np.zeros((binary.shape[1], 0), dtype=np.float32)
            self.step_weights_ = np.zeros(0, dtype=np.float32)
        self._fit_sharpening_basis()
        vectors = self.singular_vectors_
        self.norm_gram_ = np.ascontiguousarray(vectors.T @ (vectors * self.low_rank_out_[:, None] ** 2), dtype=np.float32)
        if norm_ratio is None and vectors.shape[1] and c.normalise_parts:
            norm_ratio = self._typical_norm_ratio(binary)
        self.norm_ratio_ = norm_ratio or 1.0
        # |I(r)|₁ of every training customer is not stored: computing them all costs as much
        # as the rest of a fit, and the one pass that needs them all, the top lists, has
        # just computed them while scoring.
        self.smooth_norms_ = np.zeros(0, dtype=np.float32)

    def start_state(self) -> dict[str, np.ndarray]:
        self.check_fitted()
        return {"singular_vectors": self.singular_vectors_} if self.singular_vectors_.shape[1] else {}

    def start_from(self, state: dict[str, np.ndarray]) -> None:
        self._start = state.get("singular_vectors")

    def _start_vectors(self, items: int, rank: int) -> np.ndarray | None:
        """The basis given by :meth:`start_from`, when it fits these items (at most ``rank`` of
        its directions), else None."""
        start = getattr(self, "_start", None)
        if start is None or start.ndim != 2 or start.shape[0] != items or not start.shape[1]:
            return None
        return start[:, :rank]

    def _fit_sharpening_basis(self) -> None:
        """What the sharpening step needs besides V and Σ₁²: each item's walk row in the basis,
        W = Rᵀ D_u^-b R D_i^-c V (so L(r) V = (r D_i^-a) W), and G = Vᵀ D_i^c2 V (so
        I(r) V = (r D_i^-½ V) G). W is as large as V, G is rank x rank; both empty when sharpening is off."""
        vectors = self.singular_vectors_
        if not self.sharpening_ or not vectors.shape[1]:
            self.walk_basis_ = np.zeros((vectors.shape[0], 0), dtype=np.float32)
            self.low_rank_gram_ = np.zeros((0, 0), dtype=np.float32)
            return
        threads = blas_threads()
        per_customer = sparse_times_dense(self.buyers_, vectors * self.result_weight_[:, None], threads)  # customers x rank
        per_customer *= self.co_buyer_weight_[:, None]
        self.walk_basis_ = np.ascontiguousarray(sparse_times_dense(self.bought_by_, per_customer, threads), dtype=np.float32)
        self.low_rank_gram_ = np.ascontiguousarray(vectors.T @ (vectors * self.low_rank_out_[:, None]), dtype=np.float32)

    def _typical_norm_ratio(self, binary: sp.csr_matrix) -> float:
        """c: the median |I(r)|₁ / |I(r)|₂ of a seeded sample of customers (so w keeps the
        weight it had when the part was divided by its L1 norm)."""
        lengths = np.diff(binary.indptr)
        buyers = np.flatnonzero(lengths)
        if not len(buyers):
            return 1.0
        sample = np.sort(np.random.default_rng(self.config.random_state).choice(buyers, min(NORM_SAMPLE, len(buyers)), replace=False))
        ratios = []
        for first in range(0, len(sample), 64):  # 64 dense rows at a time: 51 MB on a 200k-item catalogue
            projected = binary[sample[first : first + 64]].multiply(self.low_rank_in_[None, :]).tocsr() @ self.singular_vectors_
            smooth = (projected @ self.singular_vectors_.T) * self.low_rank_out_
            l2 = np.linalg.norm(smooth, axis=1)
            ratios.append(np.abs(smooth[l2 > 0]).sum(axis=1) / l2[l2 > 0])
        ratios = np.concatenate(ratios)
        return float(np.median(ratios)) if len(ratios) else 1.0

    def smooth_norms(self, history: sp.csr_matrix, chunk_rows: int = 256) -> np.ndarray:
        """The divisor of the low-pass part per row, c·|I(r)|₂ (older folders: |I(r)|₁,
        remembered from scoring these rows or else computed over the whole catalog,
        ``chunk_rows`` dense rows at a time); 1 where it is 0."""
        binary = sp.csr_matrix(history, dtype=np.float32, copy=True)
        binary.data[:] = 1.0
        if self.norm_ratio_:
            return self.basis_norms(binary.multiply(self.low_rank_in_[None, :]).tocsr() @ self.singular_vectors_)
        known = self.recent_smooth_norms.recall(binary)
        if known is not None:
            return known
        norms = np.empty(binary.shape[0], dtype=np.float64)
        for first in range(0, binary.shape[0], chunk_rows):
            rows = binary[first : first + chunk_rows]
            projected = rows.multiply(self.low_rank_in_[None, :]).tocsr() @ self.singular_vectors_
            norms[first : first + chunk_rows] = np.abs((projected @ self.singular_vectors_.T) * self.low_rank_out_).sum(axis=1)
        norms[norms == 0] = 1.0
        return norms

    def basis_norms(self, projected: np.ndarray) -> np.ndarray:
        """c·|I(r)|₂ of rows given in the basis (x = r D_i^-½ V, any leading rank of it):
        |I(r)|₂² = x G₂ xᵀ, no pass over the catalogue; 1 where it is 0."""
        rank = projected.shape[-1]
        squared = np.einsum("...i,...i->...", projected @ self.norm_gram_[:rank, :rank], projected, dtype=np.float64)
        norms = np.sqrt(np.maximum(squared, 0.0)) * self.norm_ratio_
        return np.where(norms > 0, norms, 1.0)

    # -- scoring ------------------------------------------------------------------------
    def scores(self, history: sp.csr_matrix, customers: np.ndarray | None = None) -> np.ndarray:
        if history.shape[0] == 1:  # one customer (a live answer): V read once, no sparse products
            return live.row_scores(self, history)
        blend, step = self._blend_and_step(history)
        if step is not None:
            step *= np.float32(self.sharpening_)
            blend -= step
        return blend.astype(np.float32, copy=False)

    def _walk(self, binary: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """L(r) (dense) and |L(r)|₁ of binary history rows."""
        weighted = binary.multiply(self.history_weight_[None, :]).tocsr()
        co_buying = self.item_walk()
        if co_buying is None:
            co_buyers = weighted @ self.bought_by_  # rows x customers
            if _dense_reach_pays(co_buyers, self.buyers_):
                reach = co_buyers.toarray()
                reach *= self.co_buyer_weight_
                # (reach R) = (Rᵀ reachᵀ)ᵀ: Rᵀ is bought_by_, rows of items split among the threads.
                walk = np.ascontiguousarray(sparse_times_dense(self.bought_by_, np.ascontiguousarray(reach.T), blas_threads()).T)
            else:
                walk = (sp.csr_matrix(co_buyers.multiply(self.co_buyer_weight_[None, :])) @ self.buyers_).toarray()
        elif sp.issparse(co_buying):
            walk = (weighted @ co_buying).toarray()
        else:
            walk = sparse_times_dense(weighted, co_buying, blas_threads())
        walk *= self.result_weight_
        return walk, _l1(walk) if self.config.normalise_parts else np.ones((len(walk), 1))

    def _blend_and_step(self, history: sp.csr_matrix, rank: int | None = None, walked=None) -> tuple[np.ndarray, np.ndarray | None]:
        """B(r) and the sharpening step B(r) V Σ₁² Vᵀ (None when sharpening is off), dense;
        ``rank``: use only the first directions of the basis (the held-out choice of rank),
        ``walked``: the rows' :meth:`_walk`, when already computed."""
        binary = sp.csr_matrix(history, dtype=np.float32, copy=True)
        binary.data[:] = 1.0
        walk, walk_norm = walked if walked is not None else self._walk(binary)
        vectors, walk_basis, gram, step_weights = self.singular_vectors_, self.walk_basis_, self.low_rank_gram_, self.step_weights_
        if rank is not None and rank < vectors.shape[1]:
            vectors, walk_basis, gram, step_weights = vectors[:, :rank], walk_basis[:, :rank], gram[:rank, :rank], step_weights[:rank]
        if not vectors.shape[1]:
            return walk / walk_norm, None
        projected = binary.multiply(self.low_rank_in_[None, :]).tocsr() @ vectors
        smooth = (projected @ vectors.T) * self.low_rank_out_
        if not self.config.normalise_parts:
            smooth_norm = np.ones((len(smooth), 1))
        elif self.norm_ratio_:
            smooth_norm = self.basis_norms(projected)[:, None]
        else:  # an older folder: the L1 norm, remembered for explaining these rows next
            smooth_norm = _l1(smooth)
            if rank is None:
                self.recent_smooth_norms.remember(binary, smooth_norm.ravel())
        w = self.config.low_rank_weight
        # float32 and in place where the arrays are this call's own (``walked`` is shared between
        # ranks): three passes over rows x items, where float64 temporaries took five.
        blend = walk / walk_norm
        smooth *= (w / smooth_norm).astype(np.float32)
        blend += smooth
        if not self.sharpening_ or not walk_basis.shape[1]:
            return blend, None
        # B(r) V without forming it from the dense blend: both parts are known in the basis,
        # L(r) V = (r D_i^-a) W and I(r) V = (r D_i^-½ V) G; then one more product with Vᵀ.
        in_basis = binary.multiply(self.history_weight_[None, :]).tocsr() @ walk_basis / walk_norm
        in_basis += (projected @ gram) * (w / smooth_norm)
        return blend, (in_basis * step_weights) @ vectors.T

    def _blend_and_step_for(self, history: sp.csr_matrix):
        """For :func:`best_setting`: the rows' scores as a function of (rank, s)."""
        parts: dict[int, tuple] = {}
        binary = sp.csr_matrix(history, dtype=np.float32, copy=True)
        binary.data[:] = 1.0
        walked = self._walk(binary)  # the same for every rank

        def scores(setting):
            rank, sharpening = setting
            if rank not in parts:
                parts.clear()  # settings come rank by rank: one rank's dense parts at a time
                blend, step = self._blend_and_step(history, rank, walked)
                # float32, as the scores are ranked: half the memory traffic of every setting's sum
                parts[rank] = blend.astype(np.float32), None if step is None else step.astype(np.float32)
            blend, step = parts[rank]
            if step is None or not sharpening:
                return blend.copy()
            result = np.multiply(step, np.float32(-sharpening))
            result += blend
            return result

        return scores

    def walk_mass(self) -> np.ndarray:
        """Per history item j, the walk mass it sends out: Σ_v R_vj b_v Σ_i R_vi c_i (cached).

        It makes a history's |L(r)|₁ = Σ_j a_j · mass_j, so explanations need no full walk.
        """
        if getattr(self, "_walk_mass_cache", None) is None:
            reach = self.buyers_ @ self.result_weight_  # per customer: Σ_i R_vi c_i
            self._walk_mass_cache = self.bought_by_ @ (self.co_buyer_weight_ * reach)
        return self._walk_mass_cache

    def item_walk(self) -> np.ndarray | sp.csr_matrix | None:
        """C = Rᵀ D_u^-b R, items x items (float32, cached), so that L(r) = (r D_i^-a) C D_i^-c:
        dense up to DENSE_WALK_ITEMS items, else sparse while it stays within
        SPARSE_WALK_ENTRIES; None above (walks go through the customers)."""
        if getattr(self, "_item_walk_cache", None) is None:
            lengths = np.diff(self.buyers_.indptr).astype(np.int64)
            dense = self.buyers_.shape[1] <= DENSE_WALK_ITEMS
            fits = dense or int(lengths @ lengths) <= SPARSE_WALK_ENTRIES
            self._item_walk_cache = _co_buying(self.buyers_, self.co_buyer_weight_, dense) if fits else False
        return None if self._item_walk_cache is False else self._item_walk_cache

    def co_buying_paths(self, purchased: np.ndarray, asked: np.ndarray) -> np.ndarray | None:
        """Σ_v R_vj b_v R_vi for purchases j and asked items i (index arrays that broadcast to
        one shape), float64, read from :meth:`item_walk`; None when it is not held."""
        co_buying = self.item_walk()
        if co_buying is None:
            return None
        if sp.issparse(co_buying):
            purchased, asked = np.broadcast_arrays(purchased, asked)
            return np.asarray(co_buying[purchased.ravel(), asked.ravel()], dtype=np.float64).reshape(purchased.shape)
        return co_buying[purchased, asked].astype(np.float64)

    def gram_rows(self) -> np.ndarray:
        """V G, items x rank (cached): each item's low-pass row in the basis. Batched
        attribution needs it for every purchase, where multiplying by G each time cost
        a minute for Gowalla's top lists. Single answers multiply the few rows they need,
        so a server answering one customer never builds it."""
        if getattr(self, "_gram_rows_cache", None) is None:
            self._gram_rows_cache = self.singular_vectors_ @ self.low_rank_gram_
        return self._gram_rows_cache

    def _forget_derived(self) -> None:
        """Drop what the caches above derived from the fitted arrays (they changed)."""
        self._walk_mass_cache = self._gram_rows_cache = self._pruned_cache = self._item_walk_cache = None

    def pruned_items(self) -> live.PrunedItems:
        """The head of V and its rows' tail norms, for live answers (cached; 10 MB on Gowalla)."""
        if getattr(self, "_pruned_cache", None) is None:
            self._pruned_cache = live.PrunedItems(self.singular_vectors_)
        return self._pruned_cache

    def warm_up(self) -> None:
        self.walk_mass()
        self.item_walk()  # a small catalogue's reasons read it: a live answer in half the time
        if live.can_prune(self):
            self.pruned_items()

    def recommend(self, history, n=10, *, customers=None, exclude_seen=True, allowed=None):
        self.check_fitted()
        if history.shape[0] == 1 and live.can_prune(self):  # a live answer: most items ruled out by a bound
            found = live.row_top(self, sp.csr_matrix(history, dtype=np.float32), n, exclude_seen, allowed)
            if found is not None:
                return found
        return super().recommend(history, n, customers=customers, exclude_seen=exclude_seen, allowed=allowed)

    def contributions(self, history_row: sp.csr_matrix, items: np.ndarray, customer: int = -1) -> np.ndarray:
        return live.row_contributions(self, history_row, items, customer)

    def top_contributors(self, history: sp.csr_matrix, customers: np.ndarray, items: np.ndarray, per_item: int = 2) -> np.ndarray:
        return attribution.top_contributors(self, history, customers, items, per_item)

    def contribution_weights(self, history: sp.csr_matrix, customers: np.ndarray, items: np.ndarray) -> np.ndarray:
        return attribution.contribution_weights(self, history, customers, items)

    def fitted_settings(self) -> dict[str, float]:
        self.check_fitted()
        return {"rank": int(self.singular_vectors_.shape[1]), "sharpening": self.sharpening_}

    def item_similarities(self, items: np.ndarray) -> np.ndarray:
        rows = sp.csr_matrix((np.ones(len(items), np.float32), (np.arange(len(items)), items)), shape=(len(items), self.n_items_))
        return self.scores(rows)

    def forget_customers(self, keep: np.ndarray) -> None:
        # The walk's customer side; W (walk_basis_) and the degrees keep their part until retrained.
        self.buyers_ = self.buyers_[np.flatnonzero(keep)]
        self.bought_by_ = self.buyers_.T.tocsr()
        self.co_buyer_weight_ = self.co_buyer_weight_[keep]
        if len(self.smooth_norms_):
            self.smooth_norms_ = self.smooth_norms_[keep]
        self._forget_derived()

    # -- persistence --------------------------------------------------------------------
    def _fitted_arrays(self) -> dict[str, np.ndarray]:
        return {
            "buyers_indptr": self.buyers_.indptr,
            "buyers_indices": self.buyers_.indices,
            "singular_vectors": self.singular_vectors_,
            "history_weight": self.history_weight_,
            "co_buyer_weight": self.co_buyer_weight_,
            "result_weight": self.result_weight_,
            "low_rank_in": self.low_rank_in_,
            "low_rank_out": self.low_rank_out_,
            "step_weights": self.step_weights_,
            "sharpening": np.array([self.sharpening_], dtype=np.float64),
            "walk_basis": self.walk_basis_,
            "low_rank_gram": self.low_rank_gram_,
            "norm_ratio": np.array([self.norm_ratio_], dtype=np.float64),
            "norm_gram": self.norm_gram_,
        }

    def _load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        indptr, indices = arrays["buyers_indptr"], arrays["buyers_indices"]
        self.buyers_ = sp.csr_matrix(
            (np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(len(indptr) - 1, self.n_items_)
        )
        self.bought_by_ = self.buyers_.T.tocsr()
        for name in ("singular_vectors", "history_weight", "co_buyer_weight", "result_weight", "low_rank_in", "low_rank_out"):
            setattr(self, f"{name}_", arrays[name])
        # Older folders stored every training customer's |I(r)|₁; they still load.
        self.smooth_norms_ = arrays.get("smooth_norms", np.zeros(0, dtype=np.float32))
        # The s chosen at fit; folders from before it was chosen carry it in their settings.
        chosen = arrays.get("sharpening")
        self.sharpening_ = float(chosen[0]) if chosen is not None else float(self.config.sharpening or 0.0)
        if self.sharpening_ and "walk_basis" not in arrays:
            raise ValueError("this graph-filter was sharpened with the whole item graph (before 2026-11-24); retrain it")
        rank = self.singular_vectors_.shape[1]
        self.step_weights_ = arrays.get("step_weights", np.zeros(rank, dtype=np.float32))
        self.walk_basis_ = arrays.get("walk_basis", np.zeros((self.n_items_, 0), dtype=np.float32))
        self.low_rank_gram_ = arrays.get("low_rank_gram", np.zeros((0, 0), dtype=np.float32))
        # Folders from before 2026-12-03 divide the low-pass part by |I(r)|₁ (c = 0 here).
        self.norm_ratio_ = float(arrays["norm_ratio"][0]) if "norm_ratio" in arrays else 0.0
        self.norm_gram_ = arrays.get("norm_gram", np.zeros((0, 0), dtype=np.float32))
        self._forget_derived()
        self.recent_smooth_norms = attribution.RecentNorms()


# The last bases computed, kept only in a process that asked for it (the automatic choice's
# trial worker): there, trials of graph-filter that differ only in settings the basis does not
# depend on (the walk's exponents, the low-pass weight) fit on the same matrix with the same
# seed, and the basis is about 40% of their fits (Gowalla, demo-wide). Two: a trial computes one for its
# held-out choice and, on a small store, one for its final model. None: nothing is kept (the
# default: a server or a training run fits once and must not hold more copies).
_last_bases: dict | None = None
_REMEMBERED = 2


def remember_last_basis() -> None:
    """Keep the last bases this process computes, for fits on the same matrix, rank and seed."""
    global _last_bases
    _last_bases = {}


def _remembered_basis(normalised: sp.csr_matrix, rank: int, iterations: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`item_basis`, from a remembered one when its inputs are the same (bit for bit)."""
    if _last_bases is None:
        return item_basis(normalised, rank, iterations, seed)
    digest = hashlib.blake2b(digest_size=16)
    for part in (normalised.indptr, normalised.indices, normalised.data):
        digest.update(np.ascontiguousarray(part).view(np.uint8))
    key = (normalised.shape, rank, iterations, seed, digest.hexdigest())
    if key not in _last_bases:
        while len(_last_bases) >= _REMEMBERED:
            del _last_bases[next(iter(_last_bases))]  # the oldest: each is as large as the catalogue x rank
        _last_bases[key] = item_basis(normalised, rank, iterations, seed)
    values, vectors = _last_bases[key]
    return values.copy(), vectors.copy()


def item_basis(
    normalised: sp.csr_matrix, rank: int, iterations: int, seed: int, start: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The top ``rank`` singular values and right singular vectors (items x rank) of
    ``normalised``, by randomised subspace iteration on the item graph P = NᵀN (Halko,
    Martinsson & Tropp 2011; LU between the products as in scikit-learn's randomized_svd)
    with Rayleigh-Ritz at the end (from the block's Gram matrix, :func:`_ritz_by_gram`, or
    after a QR where its columns are too close to dependent). ``start``: item vectors (items x k, k at most ``rank``)
    that take the place of the first k random columns, from a fit on nearly the same data.

    Why not a randomised SVD of N itself: that orthonormalises a customers x width block
    as well as an items x width one in every iteration, and on a store with more customers
    than items the customers' side is most of the work; here the dense blocks are items x
    width only (P is applied as two sparse products). The small eigenproblem runs on one
    BLAS thread, and so do the LU and QR factorisations: LAPACK's threads gain little there
    and spin badly on a loaded machine (a 15,062 x 377 QR: 4.5 s on two threads against 1.2 s
    on one, load 6 on 2 cores; the products stay on every thread)."""
    import scipy.linalg
    from threadpoolctl import threadpool_limits

    n_items = normalised.shape[1]
    width = min(n_items, rank + max(64, rank // 4))
    block = np.random.default_rng(seed).standard_normal((n_items, width)).astype(np.float32)
    if start is not None:
        block[:, : start.shape[1]] = start
    transposed = normalised.T.tocsr()
    for step in range(iterations + 1):
        if step:  # keep the columns apart between products: LU is half the cost of QR and enough here
            with threadpool_limits(1, "blas"):
                block = scipy.linalg.lu(block, permute_l=True, overwrite_a=True, check_finite=False)[0]
        # The sparse products, on one core each in scipy, split among the threads in force, asked
        # at each step: a choice's trial may be lent more once the trial beside it has ended.
        threads = blas_threads()
        block = sparse_times_dense(transposed, sparse_times_dense(normalised, block, threads), threads)  # P Q, items x width
    found = _ritz_by_gram(normalised, block) if n_items * width * width >= GRAM_RITZ_WORK else None
    if found is None:
        with threadpool_limits(1, "blas"):
            block, _ = scipy.linalg.qr(block, mode="economic", overwrite_a=True, check_finite=False)
        small = _projected_gram(normalised, block)  # Qᵀ P Q
        with threadpool_limits(1, "blas"):
            eigenvalues, rotation = scipy.linalg.eigh(small, check_finite=False)
    else:
        eigenvalues, rotation = found
    top = np.argsort(-eigenvalues)[:rank]
    values = np.sqrt(np.clip(eigenvalues[top], 0.0, None))
    return values.astype(np.float32), np.ascontiguousarray(block @ rotation[:, top].astype(np.float32))


def _ritz_by_gram(normalised: sp.csr_matrix, block: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Rayleigh-Ritz on the span of ``block``'s columns without orthonormalising them first:
    the eigenpairs of (N B)ᵀ(N B) x = λ BᵀB x, so that B x are orthonormal Ritz vectors. Its
    Gram matrix BᵀB (float64) is one matrix product on every thread, where the QR it replaces
    runs on one (Gowalla, 40,981 x 1,025: the basis 15.3 -> 13.0 s on one thread, 12.4 ->
    9.7 s on two). None when the columns are too close to dependent for that (a Cholesky pivot
    of the normalised Gram matrix under :data:`GRAM_PIVOT_FLOOR`, as on a catalogue no wider
    than the block, with items nobody bought): then the caller's QR.
    Scales ``block``'s columns to unit length in place."""
    import scipy.linalg
    from threadpoolctl import threadpool_limits

    lengths = np.linalg.norm(block, axis=0)
    if not (lengths > 0).all():
        return None
    block /= lengths
    gram = np.zeros((block.shape[1], block.shape[1]))
    for first in range(0, len(block), GRAM_ROWS):  # in float64 a few rows at a time: no float64 copy of the block
        part = block[first : first + GRAM_ROWS].astype(np.float64)
        gram += part.T @ part
    with threadpool_limits(1, "blas"):
        try:
            factor = scipy.linalg.cholesky(gram, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            return None
    if factor.diagonal().min() < GRAM_PIVOT_FLOOR:
        return None  # before the product below: the caller's QR route makes its own
    small = _projected_gram(normalised, block)  # Bᵀ P B
    with threadpool_limits(1, "blas"):
        # L⁻¹ A L⁻ᵀ, a symmetric standard problem; its eigenvectors y give x = L⁻ᵀ y.
        whitened = scipy.linalg.solve_triangular(factor, scipy.linalg.solve_triangular(factor, small, lower=True).T, lower=True)
        eigenvalues, turned = scipy.linalg.eigh((whitened + whitened.T) / 2, check_finite=False)
        return eigenvalues, scipy.linalg.solve_triangular(factor, turned, lower=True, trans="T")


def _projected_gram(normalised: sp.csr_matrix, block: np.ndarray) -> np.ndarray:
    """(N B)ᵀ (N B) = Bᵀ P B in float64 for an items x width ``block``: N B is customers x
    width, split among the threads in force."""
    projected = sparse_times_dense(normalised, block, blas_threads())
    return (projected.T @ projected).astype(np.float64)


def _co_buying(buyers: sp.csr_matrix, co_buyer_weight: np.ndarray, dense: bool) -> np.ndarray | sp.csr_matrix:
    """Rᵀ D_u^-b R (float32). Dense: summed over groups of customers with at most about
    SPARSE_WALK_ENTRIES paths each, so no group's sparse product outgrows that bound."""
    weighted = sp.csr_matrix(buyers.multiply(co_buyer_weight[:, None]), dtype=np.float32)
    if not dense:
        co_buying = (buyers.T.tocsr() @ weighted).tocsr()
        co_buying.sort_indices()  # a lookup is then a binary search in its row, not a scan (demo-sparse's reasons: 13 s of lookups -> 5 s)
        return co_buying
    lengths = np.diff(buyers.indptr).astype(np.int64)
    group = np.cumsum(lengths**2) // max(SPARSE_WALK_ENTRIES, 1)
    cuts = [0, *(np.flatnonzero(np.diff(group)) + 1).tolist(), len(lengths)]
    result = np.zeros((buyers.shape[1], buyers.shape[1]), dtype=np.float32)
    for first, last in zip(cuts[:-1], cuts[1:]):
        result += (buyers[first:last].T.tocsr() @ weighted[first:last]).toarray()
    return result


def _dense_reach_pays(co_buyers: sp.csr_matrix, buyers: sp.csr_matrix) -> bool:
    """Whether the walk's second step is cheaper from the co-buyers' reach held dense (see DENSE_REACH_GAIN)."""
    rows, customers = co_buyers.shape
    if rows * customers > DENSE_REACH_ENTRIES:
        return False
    paths = int(np.diff(buyers.indptr)[co_buyers.indices].sum())  # what the sparse product visits
    return rows * buyers.nnz < DENSE_REACH_GAIN * paths


def _l1(parts: np.ndarray) -> np.ndarray:
    """Row L1 norms shaped for broadcasting; 1 where a row is all zeros."""
    norms = np.abs(parts).sum(axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return norms
