"""Offline evaluation: splits, metrics, and one ``evaluate`` for every algorithm."""

from .evaluate import (
    EVALUATED_LISTS,
    EvaluationRun,
    evaluate,
    run_blend_evaluations,
    run_evaluation,
    split_matrices,
)
from .metrics import ACCURACY_METRICS, accuracy_at_k, hit_matrix
from .splits import leave_last_n_split, load_lightgcn, random_split, time_split

__all__ = [
    "ACCURACY_METRICS",
    "EVALUATED_LISTS",
    "accuracy_at_k",
    "EvaluationRun",
    "evaluate",
    "run_blend_evaluations",
    "run_evaluation",
    "hit_matrix",
    "leave_last_n_split",
    "load_lightgcn",
    "random_split",
    "split_matrices",
    "time_split",
]
