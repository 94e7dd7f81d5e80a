"""Matrix-factorisation models (ALS and BPR, trained by ``implicit``).

Both share the serving side written here: scores are ``user_vector . item_factors``,
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

from .base import Algorithm, AlgorithmConfig


class FactorModel(Algorithm):
    """Shared scoring, fold-in, explanation and similarity for factor models."""

    def confidence(self, weights: np.ndarray) -> np.ndarray:
        """Map interaction weights to the confidences the model was trained with."""
        return weights

    def fold_in_regularization(self) -> float:
        return float(self.config.regularization)

    def warm_up(self) -> None:
        self._regularised_gram()

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

    def _fold_in_solve(self, items: np.ndarray, confidence: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """Apply the fold-in operator M (user = M Σ_j c_j y_j) of this history to ``rhs``.

        The least-squares operator: M = (YᵀY + λI + Σ_j (c_j - 1) y_j y_jᵀ)⁻¹, symmetric
        positive definite, so a Cholesky solve is both safe and the fastest.
        """
        item_vectors = self.item_factors_[items].astype(np.float64)
        system = self._regularised_gram() + (item_vectors.T * (confidence - 1)) @ item_vectors
        factor = scipy.linalg.cho_factor(system, check_finite=False, overwrite_a=True)
        return scipy.linalg.cho_solve(factor, rhs, check_finite=False)

    def user_vectors(self, history: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        known = np.zeros(history.shape[0], dtype=bool) if users is None else np.asarray(users) >= 0
        if users is not None and known.all():
            # The batch-scoring case: every row is a training customer, a plain gather.
            return np.ascontiguousarray(self.user_factors_[np.asarray(users)], dtype=np.float32)
        vectors = np.zeros((history.shape[0], self.item_factors_.shape[1]), dtype=np.float32)
        if known.any():
            vectors[known] = self.user_factors_[np.asarray(users)[known]]
        for row in np.flatnonzero(~known):
            start, end = history.indptr[row], history.indptr[row + 1]
            if start == end:
                continue  # no history: a zero vector, the caller falls back to popularity
            items = history.indices[start:end]
            confidence = self.confidence(history.data[start:end].astype(np.float64))
            rhs = self.item_factors_[items].astype(np.float64).T @ confidence
            vectors[row] = self._fold_in_solve(items, confidence, rhs)
        return vectors

    def scores(self, history: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        return self.user_vectors(history, users) @ self.item_factors_.T

    def candidate_scores(self, history: sp.csr_matrix, users: np.ndarray | None, items: np.ndarray) -> np.ndarray:
        # Only the candidates' factors enter the product: a category filter costs less, not more.
        return self.user_vectors(history, users) @ self.item_factors_[items].T

    def contributions(self, history_row: sp.csr_matrix, items: np.ndarray, user: int = -1) -> np.ndarray:
        history_row = sp.csr_matrix(history_row)
        confidence = self.confidence(history_row.data.astype(np.float64))
        history_vectors = self.item_factors_[history_row.indices].astype(np.float64)
        # M is symmetric, so yᵢᵀ M y_j = (M yᵢ)ᵀ y_j: one solve per asked item, not per purchase.
        solved = self._fold_in_solve(history_row.indices, confidence, self.item_factors_[items].astype(np.float64).T)
        return (solved.T @ history_vectors.T) * confidence[None, :]

    def item_similarities(self, items: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(self.item_factors_, axis=1)
        norms[norms == 0] = 1.0
        return (self.item_factors_[items] / norms[items, None]) @ (self.item_factors_ / norms[:, None]).T

    def _fitted_arrays(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors_, "item_factors": self.item_factors_}

    def _load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_factors_ = arrays["user_factors"]
        self.item_factors_ = arrays["item_factors"]
        self._gram_cache = self._ridge_gram_cache = None

    def _store_factors(self, model) -> None:
        to_numpy = getattr(model, "to_cpu", None)
        model = to_numpy() if callable(to_numpy) else model
        self.user_factors_ = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self._gram_cache = self._ridge_gram_cache = None


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

    def _fit(self, user_items: sp.csr_matrix, *, show_progress: bool) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        confidences = user_items.copy()
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
            model.fit(confidences, show_progress=show_progress)
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

    def _fold_in_solve(self, items: np.ndarray, confidence: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        # The mean of the history's item vectors: the ranking direction BPR's own
        # user vectors are pulled towards during training.
        return rhs / max(float(confidence.sum()), 1.0)

    def _fit(self, user_items: sp.csr_matrix, *, show_progress: bool) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        model = BayesianPersonalizedRanking(
            factors=self.config.factors,
            learning_rate=self.config.learning_rate,
            regularization=self.config.regularization,
            iterations=self.config.iterations,
            random_state=self.config.random_state,
            num_threads=1,  # one thread makes the SGD updates, and so the model, repeatable
        )
        binary = user_items.copy()
        binary.data[:] = 1.0
        model.fit(binary, show_progress=show_progress)
        self._store_factors(model)
