"""Hyper-parameter search on a validation split carved out of the training data only.

A search space maps each parameter to ``{"choice": [...]}``, ``{"uniform": [lo, hi]}``
or ``{"loguniform": [lo, hi]}`` (integers stay integers when both bounds are). The
first trial is always the algorithm's defaults (never skipped on an estimate, only stopped
at the deadline), so tuning never returns something worse than them on validation. Trials stop at ``max_trials`` or when the time
budget is spent, whichever comes first, and the budget is kept: every trial runs in
a worker process (:mod:`recommender.selection.trials`) that is stopped when the budget
runs out, and a trial whose estimated time (from the data's size and the search's
earlier trials) exceeds what is left is not started.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .algorithms import algorithm_class
from .evaluation import random_split, split_matrices
from .evaluation.metrics import ACCURACY_METRICS
from .purchases import PurchaseLog
from .selection import DONE, DataShape, TrialOutcome, TrialRunner, work_units
from .selection.candidates import fits_in, trial_estimate


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
    threads: int = 1,
    on_trial: Callable[[Trial], None] | None = None,
    on_skip: Callable[[TrialOutcome], None] | None = None,
    waiting: Callable[[], None] | None = None,
) -> list[Trial]:
    """Random search; returns the finished trials best first by ``metric`` on validation.
    ``on_skip`` hears of trials stopped or not started for the budget; ``waiting`` is
    called about twice a second while a trial runs."""
    defaults = dataclasses.asdict(algorithm_class(algorithm).Config())
    unknown = set(space) - set(defaults)
    if unknown:
        raise ValueError(f"{algorithm} has no parameter(s) {', '.join(sorted(unknown))}")
    name, _, cut = metric.partition("@")
    if name not in ACCURACY_METRICS or not cut.isdigit():
        raise ValueError(f"unknown metric {metric!r}; try one of {', '.join(f'{m}@20' for m in ACCURACY_METRICS)}")
    fit_log, validation_log = random_split(log, validation_fraction, seed=seed)
    train, validation = split_matrices(fit_log, validation_log)
    shape = DataShape.of(train, int((np.diff(validation.indptr) > 0).sum()))
    rng = np.random.default_rng(seed)
    deadline = time.monotonic() + budget_seconds
    trials: list[Trial] = []
    seen: set[tuple] = set()
    seconds_per_unit: float | None = None  # measured on the finished trials
    with TrialRunner(train, validation, threads=threads) as runner:
        while len(seen) < max_trials and time.monotonic() < deadline:
            params = {} if not seen else sample_params(space, rng)
            key = tuple(sorted({**defaults, **params}.items()))
            if key in seen:
                if len(seen) >= _space_size(space):
                    break
                continue
            seen.add(key)
            units = work_units(algorithm, params, shape)
            left = deadline - time.monotonic()
            # The choice's rule: the first trial is estimated at the prior speed, later ones at the measured one.
            # The defaults are never skipped on an estimate (only stopped at the deadline): a search that
            # skipped them could return settings worse than them, and a prior can be off by 8x.
            estimate = trial_estimate(algorithm, params, shape, seconds_per_unit)
            if params and not fits_in(estimate, left, measured=seconds_per_unit is not None):
                if on_skip:
                    on_skip(TrialOutcome(algorithm, params, "skipped", note=f"estimated {estimate:.0f} s, {max(left, 0):.0f} s left"))
                continue
            outcome = runner.run(algorithm, params, deadline=deadline, cut_off=int(cut), metric=name, waiting=waiting)
            if outcome.status != DONE:
                if on_skip:
                    on_skip(outcome)
                if outcome.status == "failed":
                    raise ValueError(f"{algorithm} {params}: {outcome.note}")
                continue
            # The whole trial's seconds per unit, overhead included: on a small store the overhead is
            # most of a trial, and a speed without it would let a million-epoch trial start.
            measured = outcome.seconds / max(units, 1.0)
            seconds_per_unit = measured if seconds_per_unit is None else max(seconds_per_unit, measured)
            trial = Trial({**defaults, **params}, outcome.metrics, outcome.seconds)
            trials.append(trial)
            if on_trial:
                on_trial(trial)
    if not trials:
        raise ValueError(f"no trial finished within the budget of {budget_seconds:g} s; give a larger --budget")
    return sorted(trials, key=lambda t: -t.metrics[metric])


def _space_size(space: dict) -> float:
    size = 1.0
    for spec in space.values():
        (kind, values), = spec.items()
        size *= len(values) if kind == "choice" else math.inf
    return size
