"""The candidates of the automatic choice, their small searches, and what a trial costs.

Each candidate lists configurations in the order they are tried: the algorithm's
defaults first, then a few alternatives that differ where stores differ (how strongly
popular items and busy customers are damped, how many factors or neighbours, how much
regularisation). Settings that must scale with the data are set from the data: EASE's
penalty λ as a multiple of the mean item degree (it is a ridge on XᵀX, whose diagonal
is the item degrees).

Costs are estimated in arbitrary work units from the data's size; the choice turns
units into seconds with each algorithm's speed measured on its earlier trials in the
same run (a prior before the first), so a trial that cannot finish in the budget left
is not started.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..algorithms import algorithm_class
from ..algorithms.ease import DEFAULT_MEMORY_LIMIT_GB, dense_item_bytes
from ..algorithms.graph_filter import SMALL_SVD_WORK

#: Seconds per work unit of each algorithm before it has run once in this choice, measured
#: on the team's 2-core VM (Gowalla, a 100k-item demo store; docs/benchmarks.md): ALS and
#: item-kNN under load from other jobs, graph-filter as on a quiet machine (its first
#: trial on Gowalla must start within Gowalla's default budget). A work unit is about one floating-point operation of the trial's
#: main steps. A first trial estimated too long is skipped, so these lean low.
PRIOR_SECONDS_PER_UNIT = {"als": 4e-10, "item-knn-bm25": 2e-9, "item-knn": 2e-9, "graph-filter": 8e-11, "ease": 2e-10}
TRIAL_OVERHEAD_SECONDS = 0.5  # handing a trial to the worker and scoring setup, whatever the size
UNKNOWN_SECONDS_PER_UNIT = 1e-8
# A trial estimated to need more than the time left divided by this is not started (by the
# automatic choice, and by ``recommender tune``): a little margin when the algorithm's speed
# was measured, and room for error while the estimate rests on the prior (a skip is final, a
# stop only costs time).
MEASURED_MARGIN, PRIOR_MARGIN = 1.1, 0.67


def trial_estimate(algorithm: str, params: dict, shape: DataShape, seconds_per_unit: float | None = None) -> float:
    """A trial's seconds: at ``seconds_per_unit`` when measured, else at the prior speed."""
    speed = seconds_per_unit if seconds_per_unit is not None else PRIOR_SECONDS_PER_UNIT.get(algorithm, UNKNOWN_SECONDS_PER_UNIT)
    return TRIAL_OVERHEAD_SECONDS + work_units(algorithm, params, shape) * speed


def fits_in(estimate: float, seconds_left: float, measured: bool) -> bool:
    """Whether a trial estimated at ``estimate`` seconds may start with ``seconds_left`` of the budget."""
    return estimate * (MEASURED_MARGIN if measured else PRIOR_MARGIN) <= seconds_left


#: Algorithms whose scores ignore the matrix's values (they count which items were bought),
#: so the history weighting cannot change them and is not searched for them.
VALUE_BLIND = frozenset({"graph-filter", "bpr", "popular"})


@dataclass(frozen=True)
class DataShape:
    """The sizes trial costs depend on."""

    customers: int
    items: int
    interactions: int
    co_purchases: int  # Σ over customers of (items bought)²: item-item work
    validation_customers: int

    @classmethod
    def of(cls, matrix: sp.csr_matrix, validation_customers: int) -> DataShape:
        lengths = np.diff(matrix.indptr).astype(np.float64)
        return cls(matrix.shape[0], matrix.shape[1], int(matrix.nnz), int((lengths**2).sum()), int(validation_customers))

    @property
    def mean_item_degree(self) -> float:
        return self.interactions / max(self.items, 1)


@dataclass
class Candidate:
    algorithm: str
    configurations: list[dict]


def candidates(shape: DataShape, *, memory_limit_gb: float = DEFAULT_MEMORY_LIMIT_GB) -> list[Candidate]:
    """The algorithms the choice compares on this data, each with its configurations."""
    chosen = [
        Candidate("item-knn-bm25", [{}, {"neighbours": 50}, {"neighbours": 1000}, {"bm25_b": 0.3}, {"bm25_k1": 0.6}]),
        Candidate("als", [
            {},
            # Strong regularisation first: the early stop may leave no room for a third
            # alternative, and this one won the tuned peer's search on four stores of five
            # (docs/benchmarks.md); 1.2x ALS's defaults on the sparse demo stores.
            {"regularization": 200.0, "alpha": 50.0},
            {"regularization": 5.0, "alpha": 10.0},
            {"factors": 64, "regularization": 10.0, "alpha": 10.0},
            {"factors": 256},
        ]),
        Candidate("graph-filter", [
            {},
            # GF-CF's own form (Shen et al. 2021): the best tuned peer on the online-retail log.
            {"co_buyer_exponent": 1.0, "popularity_exponent": 0.5, "normalise_parts": False, "sharpening": 0.0, "low_rank_weight": 0.3},
            {"co_buyer_exponent": 1.0},
            {"history_exponent": 0.25},
            {"popularity_exponent": 0.0},
            {"rank_share": 0.01},
            {"rank_share": 0.0025},  # the cheap one: a large catalogue's defaults may not fit the budget
        ]),
    ]
    if dense_item_bytes(shape.items) <= memory_limit_gb * 1e9:
        degree = max(shape.mean_item_degree, 1.0)
        chosen.append(Candidate("ease", [
            {"l2": round(factor * degree, 3), "memory_limit_gb": memory_limit_gb} for factor in (1.0, 4.0, 0.25, 16.0, 64.0)
        ]))
    return chosen


def work_units(algorithm: str, params: dict, shape: DataShape) -> float:
    """A rough count of the arithmetic one trial does (fit plus validation scoring)."""
    config = algorithm_class(algorithm).Config(**params)
    scoring = shape.validation_customers * shape.items
    if algorithm == "als":
        f = config.factors
        fit = config.iterations * (shape.interactions * f * 12 + (shape.customers + shape.items) * f * f * 4)
        return fit + scoring * f * 2
    if algorithm in ("bpr", "spark-als"):
        f = config.factors
        return config.iterations * shape.interactions * f * 8 + scoring * f * 2
    if algorithm in ("item-knn", "item-knn-bm25"):
        return shape.co_purchases * 40 + scoring * 20
    if algorithm == "ease":
        return float(shape.items) ** 3 + shape.co_purchases * 4 + scoring * 2 * max(shape.interactions / max(shape.customers, 1), 1)
    if algorithm == "graph-filter":
        rank = config.rank or min(1024, max(1, round(config.rank_share * shape.items)))
        width = rank + max(64, rank // 4)
        iterations = config.svd_iterations + 1
        basis = width * shape.interactions * 4 * iterations + shape.items * width * width * 2 * (iterations + 1)
        # Its own held-out choice of rank and s (up to 2,000 customers, three ranks) unless both
        # are given; a small store's final model then takes a second basis (SMALL_SVD_WORK).
        choosing = config.rank is None or config.sharpening is None
        held_out = min(2000, shape.customers // 4) * shape.items * rank * 7 if choosing else 0
        second = basis if choosing and shape.interactions * rank <= SMALL_SVD_WORK else 0
        return basis + held_out + second + scoring * rank * 4
    return scoring * 10.0
