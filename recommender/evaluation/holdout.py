"""A held-out evaluation run: split a purchase log, fit on the train part, score the test part, report."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from tqdm.auto import tqdm

from ..algorithms import create_algorithm
from ..errors import EmptySplitError
from ..files import undefined_as_null
from ..interactions import Interactions, repeat_purchases
from ..purchases import PurchaseLog
from ..timestamps import iso_time, parse_timestamp
from ..weights import HistoryWeighting
from .evaluate import run_evaluation, split_matrices
from .report import build_report, render_html
from .splits import leave_last_n_split, random_split, time_split

SPLITS = ("random", "leave-last", "time", "given")


@dataclass
class SplitSpec:
    kind: str = "random"
    test_fraction: float = 0.2
    leave_last: int = 1
    cutoff: str | None = None
    seed: int = 42


@dataclass
class EvaluationResult:
    metrics: dict
    report: dict
    html: str
    fit_seconds: float

    def files(self) -> dict[str, bytes]:
        return {"report.json": json.dumps(undefined_as_null(self.report), indent=2, allow_nan=False).encode(), "report.html": self.html.encode()}


def split_log(log: PurchaseLog, spec: SplitSpec) -> tuple[PurchaseLog, PurchaseLog]:
    """``log`` split as ``spec`` says; EmptySplitError, before any fitting, when either part
    holds no purchase (nothing to train on, or nothing to evaluate)."""
    train, test = _split(log, spec)
    _check_parts(log, spec, train, test)
    return train, test


def _split(log: PurchaseLog, spec: SplitSpec) -> tuple[PurchaseLog, PurchaseLog]:
    if spec.kind == "random":
        return random_split(log, spec.test_fraction, seed=spec.seed)
    if spec.kind == "leave-last":
        return leave_last_n_split(log, spec.leave_last)
    if spec.kind == "time":
        return time_split(log, cutoff_seconds(spec))
    raise ValueError(f"split must be one of {SPLITS}, not {spec.kind!r}")


def cutoff_seconds(spec: SplitSpec) -> float:
    """The time split's cutoff in epoch seconds; ValueError when it is missing or unreadable
    (the command line checks it with this before reading any data)."""
    if not spec.cutoff:
        raise ValueError("the time split needs --cutoff (ISO 8601 or epoch seconds)")
    seconds = parse_timestamp(spec.cutoff)
    if seconds is None:
        raise ValueError(f"--cutoff {spec.cutoff!r} is neither ISO 8601 nor epoch seconds")
    return seconds


def _check_parts(log: PurchaseLog, spec: SplitSpec, train: PurchaseLog, test: PurchaseLog) -> None:
    empty_train, empty_test = not _has_purchases(train), not _has_purchases(test)
    if not (empty_train or empty_test):
        return
    if spec.kind == "time":
        span = f"the data runs from {iso_time(int(log.timestamp.min()))} to {iso_time(int(log.timestamp.max()))}"
        if empty_test:
            raise EmptySplitError(f"no purchases at or after the cutoff {spec.cutoff} ({span}): nothing to evaluate; give an earlier --cutoff")
        raise EmptySplitError(f"no purchases before the cutoff {spec.cutoff} ({span}): nothing to train on; give a later --cutoff")
    if empty_train:
        raise EmptySplitError(f"the {spec.kind} split leaves no purchase to train on")
    if spec.kind == "leave-last":
        raise EmptySplitError(f"the leave-last split held out no purchase: no customer has more than {spec.leave_last} distinct "
                              "items (--leave-last); nothing to evaluate")
    raise EmptySplitError(f"the random split held out no purchase: a customer with one item keeps it for training, and too few "
                          f"have more for --test-fraction {spec.test_fraction:g}; nothing to evaluate")


def _has_purchases(log: PurchaseLog) -> bool:
    """Whether ``log``'s matrix would hold a cell: a positive event, not all taken back by returns."""
    if not (log.weight > 0).any():
        return False
    return not log.returns or Interactions.from_log(log).matrix.nnz > 0


def evaluate_holdout(
    train_log: PurchaseLog,
    test_log: PurchaseLog,
    *,
    algorithm: str,
    params: list[str] | dict | None,
    ks: list[int],
    settings: dict,
    show_progress: bool = False,
    weighting: HistoryWeighting | None = None,
    choice: dict | None = None,
    start_state: dict | None = None,
) -> EvaluationResult:
    """Fit on ``train_log`` (weighted by ``weighting``), evaluate on ``test_log`` (same
    vocabularies), build the report, with the share of test purchases that are repeats.
    ``choice``: the record of an automatic choice made on ``train_log``, shown in the report;
    ``start_state``: its winning trial's start state, where the fit may start."""
    weighting = weighting or HistoryWeighting()
    train, test = split_matrices(train_log, test_log, weighting=weighting)
    fitted = create_algorithm(algorithm, params)
    if start_state:
        fitted.start_from(start_state)
    started = time.perf_counter()
    fitted.fit(train, show_progress=show_progress)
    fit_seconds = time.perf_counter() - started
    with tqdm(total=int(np.count_nonzero(np.diff(test.indptr))), desc="scoring the test customers", unit="customers",
              disable=not show_progress, file=sys.stderr) as bar:
        run = run_evaluation(fitted, train, test, max(max(ks), 20), progress=bar.update)
    title = f"{algorithm} — offline evaluation ({datetime.now().strftime('%Y-%m-%d %H:%M')})"
    settings = {**settings, "params": fitted.params(), "history_weighting": weighting.to_dict(), "fit_seconds": round(fit_seconds, 3)}
    report = build_report(run, ks, title=title, settings=settings, repeats=repeat_purchases(train, test))
    if choice is not None:
        report["choice"] = choice
    return EvaluationResult(report["metrics"], report, render_html(report, run), fit_seconds)
