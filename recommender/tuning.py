"""Hyper-parameter search on a validation split carved out of the training data only.

A search space maps each parameter to ``{"choice": [...]}``, ``{"uniform": [lo, hi]}``
or ``{"loguniform": [lo, hi]}`` (integers stay integers when both bounds are). The
first trial is always the algorithm's defaults, so tuning never returns something
worse than them on validation. Trials stop at ``max_trials`` or when the time
budget is spent, whichever comes first.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .algorithms import algorithm_class, create_algorithm
from .evaluation import evaluate, random_split, split_matrices
from .purchases import PurchaseLog


@dataclass
class Trial:
    params: dict
    metrics: dict
    seconds: float


def sample_params(space: dict, rng: np.random.Generator) -> dict:
    """Draw one configuration from ``space``."""
    params = {}
    for name, spec in space.items():
        if not isinstance(spec, dict) or len(spec) != 1:
            raise ValueError(f"search space entry {name!r} must be one of {{choice|uniform|loguniform: ...}}")
        (kind, values), = spec.items()
        if kind == "choice":
            params[name] = values[int(rng.integers(len(values)))]
        elif kind in ("uniform", "loguniform"):
            low, high = values
            if kind == "loguniform":
                value = math.exp(rng.uniform(math.log(low), math.log(high)))
            else:
                value = rng.uniform(low, high)
            params[name] = int(round(value)) if isinstance(low, int) and isinstance(high, int) else float(value)
        else:
            raise ValueError(f"search space entry {name!r}: unknown kind {kind!r}")
    return params


def tune(
    log: PurchaseLog,
    algorithm: str,
    space: dict,
    *,
    metric: str = "ndcg@20",
    budget_seconds: float = 300.0,
    max_trials: int = 20,
    validation_fraction: float = 0.2,
    seed: int = 42,
    on_trial: Callable[[Trial], None] | None = None,
) -> list[Trial]:
    """Random search; returns the trials best first by ``metric`` on validation."""
    defaults = dataclasses.asdict(algorithm_class(algorithm).Config())
    unknown = set(space) - set(defaults)
    if unknown:
        raise ValueError(f"{algorithm} has no parameter(s) {', '.join(sorted(unknown))}")
    k = int(metric.split("@")[1]) if "@" in metric else 20
    fit_log, validation_log = random_split(log, validation_fraction, seed=seed)
    train, validation = split_matrices(fit_log, validation_log)
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    trials: list[Trial] = []
    seen: set[tuple] = set()
    while len(trials) < max_trials and time.perf_counter() - started < budget_seconds:
        params = {} if not trials else sample_params(space, rng)
        key = tuple(sorted({**defaults, **params}.items()))
        if key in seen:
            if len(seen) >= _space_size(space):
                break
            continue
        seen.add(key)
        trial_started = time.perf_counter()
        model = create_algorithm(algorithm, params).fit(train)
        metrics = evaluate(model, train, validation, (k,))
        trial = Trial({**defaults, **params}, metrics, time.perf_counter() - trial_started)
        trials.append(trial)
        if on_trial:
            on_trial(trial)
    if metric not in trials[0].metrics:
        raise ValueError(f"unknown metric {metric!r}; try one of {', '.join(trials[0].metrics)}")
    return sorted(trials, key=lambda t: -t.metrics[metric])


def _space_size(space: dict) -> float:
    size = 1.0
    for spec in space.values():
        (kind, values), = spec.items()
        size *= len(values) if kind == "choice" else math.inf
    return size
