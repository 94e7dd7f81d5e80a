"""Item-based k-nearest-neighbours (cosine or BM25 weighting, built by ``implicit``).

The model is a sparse item x item similarity matrix S keeping the K strongest
neighbours per item; a customer's score for item i is ``Σ_j history_j · S[j, i]``,
so new purchases count immediately and each term is one "because you bought j".
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import scipy.sparse as sp

from .base import Algorithm, AlgorithmConfig

SIMILARITIES = ("cosine", "bm25")


@dataclasses.dataclass
class ItemKNNConfig(AlgorithmConfig):
    similarity: str = "cosine"
    neighbours: int = 200
    bm25_k1: float = 1.2
    bm25_b: float = 0.75


class ItemKNN(Algorithm):
    """Customers who bought this also bought: item-item similarity over co-purchases."""

    name = "item-knn"
    Config = ItemKNNConfig

    def validate_config(self) -> None:
        if self.config.similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {SIMILARITIES}, not {self.config.similarity!r}")
        if self.config.neighbours < 1:
            raise ValueError("neighbours must be at least 1")

    def _fit(self, customer_items: sp.csr_matrix, *, show_progress: bool) -> None:
        from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

        if self.config.similarity == "bm25":
            model = BM25Recommender(K=self.config.neighbours, K1=self.config.bm25_k1, B=self.config.bm25_b, num_threads=1)
        else:
            model = CosineRecommender(K=self.config.neighbours, num_threads=1)
        with warnings.catch_warnings():
            # implicit converts its own intermediate COO matrix and warns about it.
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            with self._fit_progress(show_progress, 1, "matrix") as step:  # one step: implicit reports none
                model.fit(customer_items, show_progress=False)
                step()
        self.similarity_ = sp.csr_matrix(model.similarity, dtype=np.float32)

    def scores(self, history: sp.csr_matrix, customers: np.ndarray | None = None) -> np.ndarray:
        return np.asarray((history @ self.similarity_).todense(), dtype=np.float32)

    def contributions(self, history_row: sp.csr_matrix, items: np.ndarray, customer: int = -1) -> np.ndarray:
        history_row = sp.csr_matrix(history_row)
        block = self.similarity_[history_row.indices][:, items].toarray()
        return (block * history_row.data[:, None]).T

    def item_similarities(self, items: np.ndarray) -> np.ndarray:
        return self.similarity_[items].toarray()

    def _fitted_arrays(self) -> dict[str, np.ndarray]:
        s = self.similarity_
        return {"similarity_data": s.data, "similarity_indices": s.indices, "similarity_indptr": s.indptr}

    def _load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        n = self.n_items_
        self.similarity_ = sp.csr_matrix(
            (arrays["similarity_data"], arrays["similarity_indices"], arrays["similarity_indptr"]), shape=(n, n)
        )


@dataclasses.dataclass
class BM25ItemKNNConfig(ItemKNNConfig):
    similarity: str = "bm25"


class BM25ItemKNN(ItemKNN):
    """Item-kNN with BM25 weighting, which damps very active customers and very popular items."""

    name = "item-knn-bm25"
    Config = BM25ItemKNNConfig
