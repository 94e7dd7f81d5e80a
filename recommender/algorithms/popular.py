"""Most popular items: the baseline every personalised model must beat, and the fallback."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .base import Algorithm


class MostPopular(Algorithm):
    """Scores every item by how many customers interacted with it; ignores the history."""

    name = "popular"
    personalised = False

    def _fit(self, customer_items: sp.csr_matrix, *, show_progress: bool) -> None:
        self.popularity_ = np.bincount(customer_items.indices, minlength=customer_items.shape[1]).astype(np.float32)

    def scores(self, history: sp.csr_matrix, customers: np.ndarray | None = None) -> np.ndarray:
        return np.broadcast_to(self.popularity_, (history.shape[0], len(self.popularity_))).copy()

    def contributions(self, history_row: sp.csr_matrix, items: np.ndarray, customer: int = -1) -> np.ndarray:
        # Popularity is the same for everyone, so no purchase contributes to it.
        return np.zeros((len(items), history_row.nnz), dtype=np.float32)

    def _fitted_arrays(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity_}

    def _load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.popularity_ = arrays["popularity"]
