"""Matrix-factorisation models (ALS and BPR, trained by ``implicit``).

Both share the serving side written here: scores are ``customer_vector . item_factors``,
and a customer whose history changed is *folded in*: their vector is the
least-squares solution against the fixed item factors (Hu, Koren & Volinsky 2008):

    u = (YᵀY + λI + Σ_j (c_j - 1) y_j y_jᵀ)⁻¹ Σ_j c_j y_j

which is linear in the history, so the score of item i splits exactly into
contributions ``c_j yᵢᵀ A⁻¹ y_j`` of each past purchase j ("because you bought j").
BPR was not trained by least squares, so it folds in by averaging the history's item
vectors instead (still linear, still explainable).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from ..ranking import ATTRIBUTION_PURCHASES, ATTRIBUTION_ROWS, strongest_purchases
from .base import Algorithm, AlgorithmConfig
from .inner_product_search import NormOrderedItems

# Fewer rows than this (a served request) are searched one by one: the batch search's
# shared tail product pays off only for many customers.
_PRUNED_MIN_ROWS = 64
# The search keeps its own copy of the item factors in norm order (private to each server
# worker, where the saved factors are shared pages); above this size a served request is
# scored plainly instead (Gowalla's 41k x 128 factors: 21 MB).
_SERVED_COPY_LIMIT_BYTES = 256 * 2**20


class FactorModel(Algorithm):
    """Shared scoring, fold-in, explanation and similarity for factor models."""

    def confidence(self, weights: np.ndarray) -> np.ndarray:
        """Map interaction weights to the confidences the model was trained with."""
        return weights

    def fold_in_regularization(self) -> float:
        return float(self.config.regularization)

    def warm_up(self) -> None:
        self._regularised_gram()
        if self.item_factors_.nbytes <= _SERVED_COPY_LIMIT_BYTES:
            self._norm_ordered_items()  # 0.2 s on Gowalla: not the first live answer's to pay

    def _item_gram(self) -> np.ndarray:
        """YᵀY in float64, shared by every fold-in (cached)."""
        if getattr(self, "_gram_cache", None) is None:
            factors = self.item_factors_.astype(np.float64)
            self._gram_cache = factors.T @ factors
        return self._gram_cache

    def _regularised_gram(self) -> np.ndarray:
        """YᵀY + λI, the history-independent part of every fold-in system (cached)."""
        if getattr(self, "_ridge_gram_cache", None) is None:
            gram = self._item_gram()
            self._ridge_gram_cache = gram + self.fold_in_regularization() * np.eye(gram.shape[0])
        return self._ridge_gram_cache

    def _fold_in_systems(self, vectors: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        """The fold-in matrices A (customer = A⁻¹ Σ_j c_j y_j) of a batch of equal-length histories.

        ``vectors`` (batch, purchases, factors) and ``confidence`` (batch, purchases) in
        float64. The least-squares system: A = YᵀY + λI + Σ_j (c_j - 1) y_j y_jᵀ, symmetric
        positive definite.
        """
        weighted = vectors * (confidence - 1.0)[..., None]
        return self._regularised_gram() + weighted.transpose(0, 2, 1) @ vectors

    def _fold_in_solve(self, items: np.ndarray, confidence: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """Apply A⁻¹ of this one history to ``rhs`` (a Cholesky solve: A is positive definite)."""
        key = (np.asarray(items).tobytes(), confidence.tobytes())
        last = getattr(self, "_last_fold_in", None)  # one tuple, read once: threads never see a key with another's factor
        if last is not None and last[0] == key:
            factor = last[1]  # a served answer's reasons solve the system its scores just did
        else:
            vectors = self.item_factors_[items].astype(np.float64)
            system = self._fold_in_systems(vectors[None], confidence[None])[0]
            factor = scipy.linalg.cho_factor(system, check_finite=False, overwrite_a=True)
            self._last_fold_in = (key, factor)
        return scipy.linalg.cho_solve(factor, rhs, check_finite=False)

    def customer_vectors(self, history: sp.csr_matrix, customers: np.ndarray | None = None) -> np.ndarray:
        known = np.zeros(history.shape[0], dtype=bool) if customers is None else np.asarray(customers) >= 0
        if customers is not None and known.all():
            # The batch-scoring case: every row is a training customer, a plain gather.
            return np.ascontiguousarray(self.customer_factors_[np.asarray(customers)], dtype=np.float32)
        vectors = np.zeros((history.shape[0], self.item_factors_.shape[1]), dtype=np.float32)
        if known.any():
            vectors[known] = self.customer_factors_[np.asarray(customers)[known]]
        for row in np.flatnonzero(~known):
            start, end = history.indptr[row], history.indptr[row + 1]
            if start == end:
                continue  # no history: a zero vector, the caller falls back to popularity
            items = history.indices[start:end]
            confidence = self.confidence(history.data[start:end].astype(np.float64))
            rhs = self.item_factors_[items].astype(np.float64).T @ confidence
            vectors[row] = self._fold_in_solve(items, confidence, rhs)
        return vectors

    def scores(self, history: sp.csr_matrix, customers: np.ndarray | None = None) -> np.ndarray:
        return self.customer_vectors(history, customers) @ self.item_factors_.T

    def recommend(self, history, n=10, *, customers=None, exclude_seen=True, allowed=None):
        self.check_fitted()
        few = history.shape[0] < _PRUNED_MIN_ROWS
        if allowed is not None or (few and self.item_factors_.nbytes > _SERVED_COPY_LIMIT_BYTES):
            return super().recommend(history, n, customers=customers, exclude_seen=exclude_seen, allowed=allowed)
        # Most customers skip the low-norm items.
        history = sp.csr_matrix(history, dtype=np.float32)
        search = self._norm_ordered_items()
        find = search.top_k_each if few else search.top_k
        return find(self.customer_vectors(history, customers), n, history if exclude_seen else None)

    def _norm_ordered_items(self) -> NormOrderedItems:
        if getattr(self, "_norm_order_cache", None) is None:
            self._norm_order_cache = NormOrderedItems(self.item_factors_)
        return self._norm_order_cache

    def candidate_scores(self, history: sp.csr_matrix, customers: np.ndarray | None, items: np.ndarray) -> np.ndarray:
        # Only the candidates' factors enter the product: a category filter costs less, not more.
        return self.customer_vectors(history, customers) @ self.item_factors_[items].T

    def contributions(self, history_row: sp.csr_matrix, items: np.ndarray, customer: int = -1) -> np.ndarray:
        history_row = sp.csr_matrix(history_row)
        confidence = self.confidence(history_row.data.astype(np.float64))
        history_vectors = self.item_factors_[history_row.indices].astype(np.float64)
        # M is symmetric, so yᵢᵀ M y_j = (M yᵢ)ᵀ y_j: one solve per asked item, not per purchase.
        solved = self._fold_in_solve(history_row.indices, confidence, self.item_factors_[items].astype(np.float64).T)
        return (solved.T @ history_vectors.T) * confidence[None, :]

    def _shared_fold_in_matrix(self) -> np.ndarray | None:
        """A0 when every fold-in system is A0 + Σ_j (c_j - 1) y_j y_jᵀ with one A0 for all
        customers (then attribution can use the Woodbury identity); None otherwise."""
        return self._regularised_gram()

    def _item_factors_through_shared(self) -> np.ndarray:
        """Y A0⁻¹ (items x factors, float64; cached): every item's factors through A0⁻¹."""
        if getattr(self, "_through_shared_cache", None) is None:
            shared = self._shared_fold_in_matrix()
            factors = self.item_factors_.astype(np.float64)
            self._through_shared_cache = scipy.linalg.cho_solve(scipy.linalg.cho_factor(shared), factors.T).T
        return self._through_shared_cache

    def top_contributors(self, history: sp.csr_matrix, customers: np.ndarray, items: np.ndarray, per_item: int = 2) -> np.ndarray:
        # Histories of equal length are stacked, so one batched solve serves many customers
        # (the loop in the base class pays a Python round trip and a factorisation each).
        items = np.asarray(items)
        found = np.full((*items.shape, per_item), -1, dtype=np.int32)
        for batch, purchased, weights in self._batched_attribution(history, items):
            found[batch] = strongest_purchases(weights, purchased[:, None, :], per_item)
        found[items < 0] = -1
        return found

    def contribution_weights(self, history: sp.csr_matrix, customers: np.ndarray, items: np.ndarray) -> np.ndarray:
        # Batched as top_contributors is (a blend mixes these with its other part's).
        items = np.asarray(items)
        weights = np.zeros((*items.shape, int(np.diff(history.indptr).max(initial=0))), dtype=np.float64)
        for batch, purchased, found in self._batched_attribution(history, items):
            weights[batch, :, : purchased.shape[1]] = found
        return weights

    def _batched_attribution(self, history: sp.csr_matrix, items: np.ndarray):
        """(rows, their purchases, their :meth:`_attribution_weights` for ``items`` of those rows)
        per batch of equal-length histories; weights of padded slots (item -1) are 0, so they
        never set the noise scale of :func:`strongest_purchases`."""
        history = sp.csr_matrix(history, dtype=np.float32)
        # One BLAS thread: threads only add overhead on these small matrices (measured 12x slower).
        with threadpool_limits(1):
            for batch, purchased, raw in _equal_length_batches(history):
                weights = self._attribution_weights(purchased, self.confidence(raw.astype(np.float64)), np.maximum(items[batch], 0))
                weights[items[batch] < 0] = 0.0
                yield batch, purchased, weights

    def _attribution_weights(self, purchased: np.ndarray, confidence: np.ndarray, asked: np.ndarray) -> np.ndarray:
        """c_j · y_iᵀ A⁻¹ y_j for a batch of equal-length histories: (batch, asked, purchases)."""
        vectors = self.item_factors_[purchased].astype(np.float64)  # (batch, L, f)
        length, factors = purchased.shape[1], vectors.shape[2]
        if self._shared_fold_in_matrix() is not None and length < factors:
            # Woodbury: with A = A0 + Yₕᵀ U Yₕ (U = diag(c - 1)), Y_a A⁻¹ Yₕᵀ = T (I + U S)⁻¹
            # where T = Y_a A0⁻¹ Yₕᵀ and S = Yₕ A0⁻¹ Yₕᵀ: an L x L solve instead of f x f.
            through = self._item_factors_through_shared()
            histories_t = vectors.transpose(0, 2, 1)
            s = through[purchased] @ histories_t  # (batch, L, L)
            t = through[asked] @ histories_t  # (batch, k, L)
            system_t = np.eye(length) + s * (confidence - 1.0)[:, None, :]  # (I + U S)ᵀ = I + S U
            solved = np.linalg.solve(system_t, t.transpose(0, 2, 1)).transpose(0, 2, 1)
        else:
            asked_vectors = self.item_factors_[asked].astype(np.float64)
            through = np.linalg.solve(self._fold_in_systems(vectors, confidence), asked_vectors.transpose(0, 2, 1))
            solved = through.transpose(0, 2, 1) @ vectors.transpose(0, 2, 1)
        return solved * confidence[:, None, :]

    def item_similarities(self, items: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(self.item_factors_, axis=1)
        norms[norms == 0] = 1.0
        return (self.item_factors_[items] / norms[items, None]) @ (self.item_factors_ / norms[:, None]).T

    def _fitted_arrays(self) -> dict[str, np.ndarray]:
        return {"customer_factors": self.customer_factors_, "item_factors": self.item_factors_}

    def forget_customers(self, keep: np.ndarray) -> None:
        self.customer_factors_ = np.ascontiguousarray(self.customer_factors_[keep])

    def _load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        # Folders written before 2026-12-02 name the customer factors as implicit does.
        customer_factors = arrays["customer_factors"] if "customer_factors" in arrays else arrays["user_factors"]
        self._set_factors(customer_factors, arrays["item_factors"])

    def _store_factors(self, model) -> None:
        to_numpy = getattr(model, "to_cpu", None)
        model = to_numpy() if callable(to_numpy) else model
        self._set_factors(model.user_factors, model.item_factors)  # implicit's names

    def _set_factors(self, customer_factors: np.ndarray, item_factors: np.ndarray) -> None:
        """Install new factors (float32, C order: saved arrays pass through uncopied) and
        forget everything derived from the old ones."""
        self.customer_factors_ = np.ascontiguousarray(customer_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(item_factors, dtype=np.float32)
        self._gram_cache = self._ridge_gram_cache = self._through_shared_cache = self._norm_order_cache = None
        self._last_fold_in = None  # (history's items and confidences, its Cholesky factor)


def _equal_length_batches(history: sp.csr_matrix):
    """(rows, their purchases, their raw weights) for groups of rows with histories of one
    length, each group small enough for a batched solve (at most ATTRIBUTION_ROWS rows and
    ATTRIBUTION_PURCHASES purchases: the stacked factors x factors systems stay at tens of MB)."""
    lengths = np.diff(history.indptr)
    for length in np.unique(lengths[lengths > 0]):
        rows = np.flatnonzero(lengths == length)
        batches = max(-(-len(rows) // ATTRIBUTION_ROWS), -(-len(rows) * int(length) // ATTRIBUTION_PURCHASES))
        for batch in np.array_split(rows, batches):
            positions = history.indptr[batch][:, None] + np.arange(length)
            yield batch, history.indices[positions], history.data[positions]


@dataclasses.dataclass
class ALSConfig(AlgorithmConfig):
    """Implicit-feedback ALS. Confidence of a cell is ``alpha * log2(1 + weight)``."""

    # Chosen on a validation split of Gowalla's training data (not its test set) and
    # checked on the demo store: strong confidence and regularisation beat the
    # library's defaults (alpha 1, lambda 0.01) by far on implicit data.
    factors: int = 128
    regularization: float = 50.0
    alpha: float = 30.0
    iterations: int = 15


class ALS(FactorModel):
    """Weighted matrix factorisation by alternating least squares (Hu et al. 2008)."""

    name = "als"
    Config = ALSConfig

    def validate_config(self) -> None:
        c = self.config
        if c.factors < 1 or c.iterations < 1:
            raise ValueError("factors and iterations must be at least 1")
        if c.regularization < 0 or c.alpha <= 0:
            raise ValueError("regularization must be >= 0 and alpha > 0")

    def confidence(self, weights: np.ndarray) -> np.ndarray:
        # log2 keeps a single purchase at exactly alpha and tames heavy repeat buyers.
        return self.config.alpha * np.log2(1.0 + weights)

    def _fit(self, customer_items: sp.csr_matrix, *, show_progress: bool) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        confidences = customer_items.copy()
        confidences.data = self.confidence(confidences.data).astype(np.float32)
        # implicit runs its own threads; BLAS threads inside them would oversubscribe.
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.config.factors,
                regularization=self.config.regularization,
                alpha=1.0,
                iterations=self.config.iterations,
                random_state=self.config.random_state,
            )
            with self._fit_progress(show_progress, self.config.iterations, "iterations") as step:
                model.fit(confidences, show_progress=False, callback=step)
        self._store_factors(model)


@dataclasses.dataclass
class BPRConfig(AlgorithmConfig):
    """Bayesian personalised ranking by SGD."""

    factors: int = 128
    learning_rate: float = 0.05
    regularization: float = 0.001
    iterations: int = 200


class BPR(FactorModel):
    """Pairwise ranking factorisation (Rendle et al. 2009); the last factor is the item bias."""

    name = "bpr"
    Config = BPRConfig

    def validate_config(self) -> None:
        c = self.config
        if c.factors < 1 or c.iterations < 1 or c.learning_rate <= 0:
            raise ValueError("factors and iterations must be at least 1 and learning_rate > 0")

    def confidence(self, weights: np.ndarray) -> np.ndarray:
        # BPR learns from which items were bought, not how often.
        return np.ones_like(weights)

    def _fold_in_systems(self, vectors: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        # The mean of the history's item vectors: the ranking direction BPR's own
        # customer vectors are pulled towards during training, so A = (Σ_j c_j) I.
        total = np.maximum(confidence.sum(axis=-1), 1.0)
        return total[:, None, None] * np.eye(vectors.shape[-1])

    def _fold_in_solve(self, items: np.ndarray, confidence: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        return rhs / max(float(confidence.sum()), 1.0)  # A is a multiple of I: no solve needed

    def _shared_fold_in_matrix(self) -> None:
        return None

    def _fit(self, customer_items: sp.csr_matrix, *, show_progress: bool) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        model = BayesianPersonalizedRanking(
            factors=self.config.factors,
            learning_rate=self.config.learning_rate,
            regularization=self.config.regularization,
            iterations=self.config.iterations,
            random_state=self.config.random_state,
            num_threads=1,  # one thread makes the SGD updates, and so the model, repeatable
        )
        binary = customer_items.copy()
        binary.data[:] = 1.0
        with self._fit_progress(show_progress, self.config.iterations, "iterations") as step:
            model.fit(binary, show_progress=False, callback=step)
        self._store_factors(model)
