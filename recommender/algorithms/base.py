"""The one algorithm interface.

Algorithms work in index space: rows of a CSR *history* matrix (customers x items,
values are confidence weights) in, item indices and scores out. Mapping external
ids, catalogs and fallbacks is the job of :class:`recommender.model.Model`.

A subclass implements ``_fit``, ``scores`` and, where it can, ``contributions`` and
``item_similarities``; filtering and top-k selection are written once, here.
Every score is computed from a history row, so a customer whose history changed
after training (a new purchase) is scored from the new history without retraining.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ..errors import NotFittedError
from ..ranking import strongest_purchases, top_k


@dataclasses.dataclass
class AlgorithmConfig:
    """Hyper-parameters; subclasses add fields with defaults chosen for accuracy."""

    random_state: int = 42


class Algorithm(ABC):
    """Base class: ``fit`` -> ``recommend`` / ``similar_items`` / ``explain``; arrays in and out."""

    name: ClassVar[str] = ""
    #: False for algorithms whose scores ignore the customer (popularity).
    personalised: ClassVar[bool] = True
    Config: ClassVar[type[AlgorithmConfig]] = AlgorithmConfig

    def __init__(self, config: AlgorithmConfig | None = None, **params: Any):
        # Only store settings here; validation happens in fit (scikit-learn's contract).
        self.config = config if config is not None else self.Config(**params)
        self.n_items_: int | None = None

    # -- training -------------------------------------------------------------------
    def fit(self, customer_items: sp.csr_matrix, *, show_progress: bool = False) -> Algorithm:
        """Learn from a customers x items CSR matrix of confidence weights; returns self."""
        if not sp.issparse(customer_items):
            raise TypeError("customer_items must be a scipy.sparse CSR matrix (customers x items)")
        customer_items = sp.csr_matrix(customer_items, dtype=np.float32)
        if customer_items.nnz == 0:
            raise ValueError("customer_items has no interactions: there is nothing to learn from")
        if customer_items.data.min() < 0:
            raise ValueError("customer_items holds negative weights; weights must be positive")
        self.validate_config()
        self.n_items_ = customer_items.shape[1]
        self.warm_started_ = False  # set by an algorithm that used its start state (start_from)
        self._fit(customer_items, show_progress=show_progress)
        return self

    def validate_config(self) -> None:  # noqa: B027 - optional hook, most configs need no checks
        """Raise ValueError for settings outside their valid range (called by fit)."""

    @abstractmethod
    def _fit(self, customer_items: sp.csr_matrix, *, show_progress: bool) -> None: ...

    @contextlib.contextmanager
    def _fit_progress(self, show: bool, steps: int, unit: str) -> Iterator[Callable[..., None]]:
        """A progress bar named after the algorithm for a fit of ``steps`` steps; yields the
        callback that advances it (implicit's own bars carry no name, so they are turned off)."""
        from tqdm.auto import tqdm

        with tqdm(total=steps, desc=f"fitting {self.name}", unit=unit, disable=not show, file=sys.stderr) as bar:
            yield lambda *_: bar.update(1)

    # -- scoring ----------------------------------------------------------------------
    @abstractmethod
    def scores(self, history: sp.csr_matrix, customers: np.ndarray | None = None) -> np.ndarray:
        """Dense scores (rows x items) for the customers whose histories are ``history``.

        ``customers[r] >= 0`` says row r is exactly training customer ``customers[r]``'s
        history, so learned per-customer state may be reused; -1 (or ``customers=None``)
        means the row must be folded in from the history alone.
        """

    def candidate_scores(self, history: sp.csr_matrix, customers: np.ndarray | None, items: np.ndarray) -> np.ndarray:
        """Scores of ``items`` only (rows x len(items)); subclasses may skip the other columns."""
        return np.asarray(self.scores(history, customers))[:, items]

    def recommend(
        self,
        history: sp.csr_matrix,
        n: int = 10,
        *,
        customers: np.ndarray | None = None,
        exclude_seen: bool = True,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` item indices and scores per history row.

        ``allowed`` is an optional boolean mask over items (candidates, category, and
        not-excluded items). Rows with fewer than ``n`` eligible items are padded with
        index -1 and score -inf.
        """
        self.check_fitted()
        if not (sp.isspmatrix_csr(history) and history.dtype == np.float32):
            history = sp.csr_matrix(history, dtype=np.float32)
        seen_rows = np.repeat(np.arange(history.shape[0]), np.diff(history.indptr)) if exclude_seen else None
        if allowed is None:
            # float32 scores are used in place: no copy between the product and top-k.
            scores = np.asarray(self.scores(history, customers), dtype=np.float32)
            if exclude_seen:
                scores[seen_rows, history.indices] = -np.inf
            return top_k(scores, n)
        # A filter (category, candidate list) scores only the allowed columns.
        candidates = np.flatnonzero(allowed)
        scores = np.array(self.candidate_scores(history, customers, candidates), dtype=np.float32, copy=None)
        if exclude_seen:
            position = np.full(self.n_items_, -1, dtype=np.int64)
            position[candidates] = np.arange(len(candidates))
            columns = position[history.indices]
            keep = columns >= 0
            scores[seen_rows[keep], columns[keep]] = -np.inf
        positions, best = top_k(scores, n)
        indices = np.where(positions >= 0, candidates[np.maximum(positions, 0)] if len(candidates) else -1, -1)
        missing = min(n, self.n_items_) - indices.shape[1]  # fewer candidates than n: pad like top_k does
        if missing > 0:
            indices = np.pad(indices, ((0, 0), (0, missing)), constant_values=-1)
            best = np.pad(best, ((0, 0), (0, missing)), constant_values=-np.inf)
        return indices.astype(np.int64), best

    def similar_items(self, items: np.ndarray, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` items most similar to each of ``items`` (the item itself excluded)."""
        self.check_fitted()
        items = np.atleast_1d(np.asarray(items, dtype=np.int64))
        similarity = np.asarray(self.item_similarities(items), dtype=np.float32)
        similarity[np.arange(len(items)), items] = -np.inf
        return top_k(similarity, n)

    def item_similarities(self, items: np.ndarray) -> np.ndarray:
        """Similarity of each of ``items`` to every item (len(items) x n_items)."""
        raise NotImplementedError(f"{type(self).__name__} has no notion of item-to-item similarity.")

    # -- explanations -----------------------------------------------------------------
    def contributions(self, history_row: sp.csr_matrix, items: np.ndarray, customer: int = -1) -> np.ndarray:
        """How much each history item adds to each of ``items``' scores.

        Returns an array of shape (len(items), nnz of the row), columns in the row's
        index order. Subclasses whose scores are not driven by the history return zeros.
        ``customer >= 0`` says the row is exactly that training customer's history, so
        per-customer state learned at fit time may be reused (as in ``scores``).
        """
        raise NotImplementedError(f"{type(self).__name__} cannot attribute scores to past purchases.")

    def top_contributors(self, history: sp.csr_matrix, customers: np.ndarray, items: np.ndarray, per_item: int = 2) -> np.ndarray:
        """For each row r and each item ``items[r, k]``, the history items (indices) that add
        most to its score, strongest first: shape (rows, k, per_item), -1 where fewer
        purchases add anything (and for item -1).

        Training calls this once for every cached top list, so serving a cached answer
        needs no attribution. This loop over :meth:`contributions` is exact for every
        algorithm; subclasses may batch it, giving the same answer faster.
        """
        history = sp.csr_matrix(history, dtype=np.float32)
        items = np.asarray(items)
        found = np.full((*items.shape, per_item), -1, dtype=np.int32)
        for row in range(history.shape[0]):
            start, end = history.indptr[row], history.indptr[row + 1]
            listed = np.flatnonzero(items[row] >= 0)
            if start == end or not len(listed):
                continue
            weights = self.contributions(history[row], items[row, listed], int(customers[row]))
            found[row, listed] = strongest_purchases(weights, history.indices[start:end], per_item)
        return found

    def contribution_weights(self, history: sp.csr_matrix, customers: np.ndarray, items: np.ndarray) -> np.ndarray:
        """:meth:`contributions` of many rows at once: (rows, k, longest history), row r's
        purchases in its index order and 0 past its own length, and 0 for item -1 (a blend
        mixes its parts' with this). This loop is exact for every algorithm; subclasses may
        batch it, giving the same answer faster."""
        history = sp.csr_matrix(history, dtype=np.float32)
        items = np.asarray(items)
        lengths = np.diff(history.indptr)
        weights = np.zeros((*items.shape, int(lengths.max(initial=0))), dtype=np.float64)
        for row in np.flatnonzero(lengths > 0):
            listed = np.flatnonzero(items[row] >= 0)
            if len(listed):
                weights[row, listed, : lengths[row]] = self.contributions(history[row], items[row, listed], int(customers[row]))
        return weights

    def explain(self, history_row: sp.csr_matrix, item: int, n: int = 3) -> list[tuple[int, float]]:
        """The history items that drove ``item``'s score, strongest first, as (index, share)."""
        self.check_fitted()
        history_row = sp.csr_matrix(history_row, dtype=np.float32)
        if history_row.nnz == 0:
            return []
        contribution = self.contributions(history_row, np.array([item]))[0]
        order = np.argsort(-contribution, kind="stable")[:n]
        return [(int(history_row.indices[j]), float(contribution[j])) for j in order if contribution[j] > 0]

    # -- persistence ------------------------------------------------------------------
    def fitted_arrays(self) -> dict[str, np.ndarray]:
        """The learned state as named numpy arrays (saved as .npy, loaded without pickle)."""
        self.check_fitted()
        return self._fitted_arrays()

    @abstractmethod
    def _fitted_arrays(self) -> dict[str, np.ndarray]: ...

    @classmethod
    def from_arrays(cls, params: dict[str, Any], arrays: dict[str, np.ndarray], n_items: int) -> Algorithm:
        """Rebuild a fitted algorithm from its parameters and arrays."""
        algorithm = cls(cls.Config(**params))
        algorithm.n_items_ = n_items
        algorithm._load_arrays(arrays)
        return algorithm

    @abstractmethod
    def _load_arrays(self, arrays: dict[str, np.ndarray]) -> None: ...

    def forget_customers(self, keep: np.ndarray) -> None:  # noqa: B027 - only algorithms with per-customer state act
        """Keep learned per-customer state only for the training customers where the boolean
        mask ``keep`` is true, renumbered in order (``recommender forget --rewrite-models``).
        Item-side arrays keep what the others taught them until the next training."""

    def start_state(self) -> dict[str, np.ndarray]:
        """What a later fit on nearly the same data (the same items, in the same order) may
        start from to converge sooner: the automatic choice hands its winning trial's to the
        final fit. {}: nothing (most algorithms fit in one go, or start from random)."""
        return {}

    def start_from(self, state: dict[str, np.ndarray]) -> None:  # noqa: B027 - only iterative fits act
        """Start the next :meth:`fit` from another fit's :meth:`start_state`; a state that does
        not match the data is ignored. ``warm_started_`` says after the fit whether it was used."""

    def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Build lazily cached state now (servers call this before taking traffic)."""

    def params(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    def fitted_settings(self) -> dict[str, Any]:
        """Settings the algorithm chose itself while fitting (on held-out data), for the
        manifest beside :meth:`params`; the arrays carry them for loading."""
        return {}

    def check_fitted(self) -> None:
        if self.n_items_ is None:
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet; call fit(customer_items) first.")

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({settings})"
