"""The automatic choice of model (``--algorithm auto``): fit candidates on a validation
split of the store's own data, within a time budget, and keep the best.

1. Hold out validation purchases (:mod:`.validation`: time-based when there are times).
2. Round one fits every candidate's defaults, cheapest first, so a short budget still
   compares them all (a candidate whose defaults would not fit the budget tries its
   cheapest configuration instead); later rounds try the alternatives of the best
   :data:`CONTENDERS` candidates (if within :data:`CLOSE_ENOUGH` of the best), best first,
   one step each per round: a setting, then another history weighting, in turn. With two
   threads or more, trials that do not depend on each other (round one's, and one later
   round's steps of different contenders) run two at a time (:data:`LANES`).
3. The search stops early: a contender whose last :data:`PATIENCE` trials did not beat
   its own best by :data:`MIN_GAIN` gets no more, and the choice ends when no contender is
   left, however much budget remains (on small stores most of it), or once later rounds'
   trials are estimated at :data:`LATER_ROUNDS_SHARE` times round one's (at the prior
   speeds, from the data's shape and the settings: the same search on a busy machine as on
   a quiet one). No later round at all when round one settled the algorithm (:func:`_settled`).
4. A trial is started only if its estimated time fits what is left of the budget, and
   one still running when the budget ends is stopped (:mod:`.trials`). The default budget
   is a multiple of round one's estimated cost (:func:`default_budget`).
5. After the later rounds, unless round one settled the algorithm, the blend of the two best
   algorithms (:mod:`recommender.algorithms.blend`, each part at its best trial's settings,
   both under the best one's history weighting: a blend reads one history per customer)
   is tried if what its parts' trials took fits the budget left; its weight is chosen on the
   same validation customers among :data:`BLEND_WEIGHTS`, and it is kept only if it beats
   the best single trial by more than :data:`BLEND_STANDARD_ERRORS` paired standard errors.
6. The winner is the best validation figure (ties: the faster trial). The caller refits
   it on all the data with the settings its trial chose while fitting (:func:`refit_params`),
   starting from its trial's start state where it has one (``Choice.start_state``:
   graph-filter's basis, fitted on the same items less the validation purchases);
   :class:`Choice` records every trial and why the winner won.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..algorithms import algorithm_class
from ..algorithms.ease import DEFAULT_MEMORY_LIMIT_GB
from ..weights import HistoryWeighting
from .candidates import (
    TRIAL_OVERHEAD_SECONDS,
    VALUE_BLIND,
    Candidate,
    DataShape,
    candidates,
    fits_in,
    trial_estimate,
    work_units,
)
from .trials import DONE, FAILED, SKIPPED, TrialOutcome, TrialRunner

AUTO = "auto"
FALLBACK_ALGORITHM = "item-knn-bm25"  # when no trial finishes: the cheapest robust candidate
# Later rounds search candidates whose best is at least this share of the best. The largest
# gain a candidate's alternatives gave over its defaults on the stores of docs/benchmarks.md
# was 1.21x (ALS on demo-sparse, from 0.87 of round one's best to the winner), so one below
# 1/1.25 of the best is not searched (Gowalla's ALS, 0.76: its alternatives took a quarter to
# a half of the later rounds there and came nowhere near).
CLOSE_ENOUGH = 0.8
# The search ends after round one when round one's best leads every other algorithm by more
# than this many paired standard errors of validation NDCG: the algorithm is settled. The
# runners-up whose alternatives went on to win trailed by 3.2 (online-retail) and 5.5
# (demo-sparse) standard errors; Gowalla's ALS trailed by 13.8, and Gowalla's later rounds
# (30-60 s) gained nothing (research/round_one_noise.py, docs/benchmarks.md).
SETTLED_STANDARD_ERRORS = 10.0
CONTENDERS = 3  # ...and only the best this many of them (on the online-retail log the third of round one won)
PATIENCE = 2  # a contender's search ends after this many trials in a row without a gain...
MIN_GAIN = 0.005  # ...of at least this share over its best so far
# Later rounds start no trial once their trials' estimated seconds reach this many times
# round one's: the search's length follows what trials cost on this store, not a fixed floor.
# Estimated at the prior speeds (:func:`_prior_estimate`), not measured: a rule on measured
# seconds ended the search on the online-retail log one trial sooner in three of six runs,
# on a busier moment of the machine, and lost its winner (test NDCG@20 0.1364 against 0.1444).
# Measured CPU time did not help: two-thread trials spin for their threads (ALS: 3.8-4.7 s of
# CPU for 2.2 s of wall time). A round's steps are admitted in order before it starts, so two
# trials side by side count as two, and the same ones, however the lanes are timed.
LATER_ROUNDS_SHARE = 1.5
# The default budget: this many times round one's estimated cost (every candidate's
# defaults, at the prior speeds), at least MIN_BUDGET_SECONDS. Round one's estimate rests on
# priors measured on a quiet machine, so the multiple leaves room for a loaded one (two to
# three times slower) and for the alternatives; the early stop ends the search sooner where
# the alternatives stop paying.
BUDGET_ROUNDS = 4.0
MIN_BUDGET_SECONDS = 10.0
# A candidate whose defaults are estimated at more than this many times the rest of round
# one together (EASE on a large catalogue: cubic in the items) does not size the budget; it
# runs only if the budget happens to allow it.
_OUTLIER_SHARE = 4.0
DEFAULT_METRIC = "ndcg@20"
WEIGHTING_STEP = ("weighting",)  # a pending step: (WEIGHTING_STEP, index of the weighting)
BLEND = "blend"
# The runner-up's shares the blend's trial compares. On the demo stores of docs/benchmarks.md
# validation chose 0.3-0.5 of a graph-filter beside a winning ALS, and the blend gained 3.6%
# and 4.5% test NDCG@20 over the winner alone (research/store_blend.py).
BLEND_WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# A blend's trial fits and scores both parts: their own trials' seconds, plus this share for
# scoring the mixes at every weight.
BLEND_MIXING_SHARE = 0.25
# The blend is kept only if its lead over the best single trial is more than this many paired
# standard errors: its figure is the best of nine weights on the very customers it is judged
# on (so it flatters the blend), and it costs two fits and two scorings per answer. Measured
# (research/store_blend.py, docs/benchmarks.md): the blend's lead was 5.5 and 4.1 standard
# errors on demo-sparse and demo-wide, where it gained 3.6% and 3.9% test NDCG@20, and 2.6 and
# 1.9 on online-retail and demo-dense, where it lost 1.9% and gained 0.1%. Three separates
# them; it was set knowing those test figures, on four stores: a rule to re-check on the next.
BLEND_STANDARD_ERRORS = 3.0
# Round one's trials are independent, and so are one later round's steps of different
# contenders (each starts from its own algorithm's best), so with two or more threads they run
# two at a time, each on half of them, the costliest first. Much of a graph-filter trial runs
# on one thread whatever it is given (scipy's sparse products, the LU and QR steps: 16 of its
# 40 s on Gowalla), and the other core then fits the others: Gowalla's round one took 59.6 s
# one trial after another on two threads (item-kNN 4.3, ALS 14.2, graph-filter 39.6 s) against
# 35.8 s two at a time (docs/benchmarks.md). A round with one contender, and the blend, run on
# every thread.
LANES = 2


def round_one_seconds(shape: DataShape, pool: list[Candidate]) -> float:
    """Round one's estimated seconds at the prior speeds: every candidate's defaults, less an
    outlier whose defaults cost more than :data:`_OUTLIER_SHARE` times all the others."""
    costs = sorted(_prior_estimate(c.algorithm, c.configurations[0], shape) for c in pool if c.configurations)
    while len(costs) > 1 and costs[-1] > _OUTLIER_SHARE * sum(costs[:-1]):
        costs.pop()
    return float(sum(costs))


def default_budget(
    fit: sp.csr_matrix, targets: sp.csr_matrix | None = None, *, memory_limit_gb: float = DEFAULT_MEMORY_LIMIT_GB,
    pool: list[Candidate] | None = None,
) -> float:
    """Seconds for the choice when none is given: :data:`BUDGET_ROUNDS` times round one's
    estimated cost (:func:`round_one_seconds`), at least :data:`MIN_BUDGET_SECONDS`, so that
    every candidate's first trial fits on the store's own shape, whatever its sizes. ``targets``:
    the validation purchases (their customers are scored in every trial; default: a tenth)."""
    scored = int((np.diff(targets.indptr) > 0).sum()) if targets is not None else fit.shape[0] // 10
    shape = DataShape.of(fit, scored)
    pool = pool if pool is not None else candidates(shape, memory_limit_gb=memory_limit_gb)
    return float(round(max(MIN_BUDGET_SECONDS, BUDGET_ROUNDS * round_one_seconds(shape, pool))))


def _prior_estimate(algorithm: str, params: dict, shape: DataShape) -> float:
    return trial_estimate(algorithm, params, shape)


def refit_params(trial: TrialOutcome) -> dict:
    """The settings the winner is refitted with: its trial's configuration plus the settings
    the trial chose itself on held-out data while fitting (graph-filter's rank and sharpening),
    so the refit does not choose them again on nearly the same data: on Gowalla that choice
    was 45% of a graph-filter fit (22.3 s against 12.2 s, quiet machine)."""
    fields = {f.name for f in dataclasses.fields(algorithm_class(trial.algorithm).Config)}
    return {**trial.params, **{k: v for k, v in trial.fitted_settings.items() if k in fields}}


@dataclass
class Choice:
    """The outcome of a choice: the winner, every trial, and the reason in one sentence.
    ``params``: what to refit the winner with (:func:`refit_params`); ``trial_params``: its
    trial's configuration, as tried."""

    algorithm: str
    params: dict
    metric: str
    trials: list[TrialOutcome]
    budget_seconds: float
    seconds: float
    validation: dict
    reason: str
    fitted_settings: dict = field(default_factory=dict)
    weighting: HistoryWeighting = field(default_factory=HistoryWeighting)
    ending: str = ""  # why the search ended: early stop, budget, or nothing left to try
    trial_params: dict | None = None  # None: the same as params
    threads: int = 1  # BLAS and OpenMP threads the choice had
    lanes: int = 1  # independent trials at a time, each on threads // lanes (1: one after another)
    blend: dict = field(default_factory=dict)  # the blend's trial: parts, outcome, weight, kept or not ({}: not tried)
    # The winner's trial's start state (Algorithm.start_state), for the refit; not recorded.
    start_state: dict = field(default_factory=dict, repr=False)

    def record(self) -> dict:
        """JSON-able summary for the manifest and the report."""
        tried = self.params if self.trial_params is None else self.trial_params
        return {
            "winner": {"algorithm": self.algorithm, "params": tried, "refit_params": self.params,
                       "history_weighting": self.weighting.to_dict()},
            "metric": self.metric,
            "reason": self.reason,
            "budget_seconds": round(self.budget_seconds, 1),
            "seconds": round(self.seconds, 1),
            "ending": self.ending,
            "threads": self.threads,
            "lanes": self.lanes,
            "validation": self.validation,
            "trials": [trial.record() for trial in self.trials],
            **({"blend": self.blend} if self.blend else {}),
        }


def parse_metric(metric: str) -> tuple[str, int]:
    """``"ndcg@20"`` -> ("ndcg", 20); the choice ranks by one accuracy metric at one cut-off."""
    from ..evaluation.metrics import ACCURACY_METRICS

    name, _, cut = metric.partition("@")
    if name not in ACCURACY_METRICS or not cut.isdigit() or int(cut) < 1:
        raise ValueError(f"metric {metric!r} must look like NAME@K with NAME one of {', '.join(ACCURACY_METRICS)}")
    return name, int(cut)


def choose(
    fit: sp.csr_matrix,
    targets: sp.csr_matrix,
    *,
    budget_seconds: float,
    metric: str = DEFAULT_METRIC,
    memory_limit_gb: float = DEFAULT_MEMORY_LIMIT_GB,
    threads: int = 1,
    validation: dict | None = None,
    pool: list[Candidate] | None = None,
    weightings: list[tuple[HistoryWeighting, sp.csr_matrix]] | None = None,
    on_trial: Callable[[TrialOutcome, TrialOutcome | None], None] | None = None,
    waiting: Callable[[], None] | None = None,
    stop_early: bool = True,
) -> Choice:
    """Compare the candidates (``pool``, default :func:`.candidates.candidates`) on ``targets``.

    ``weightings``: the history weightings to compare, each with the fitting data under it;
    the first is ``fit``'s and round one's (default: only the plain one).
    ``on_trial(trial, best_so_far)`` is called after every trial; ``waiting`` while one runs.
    ``stop_early`` False: every contender's every configuration, as long as the budget lasts
    (a benchmark's tuned peer), instead of the early stop of the module's step 3, and no blend.
    """
    name, cut_off = parse_metric(metric)
    threads = max(1, int(threads))
    started = time.monotonic()
    deadline = started + budget_seconds
    shape = DataShape.of(fit, int((np.diff(targets.indptr) > 0).sum()))
    pool = pool if pool is not None else candidates(shape, memory_limit_gb=memory_limit_gb)
    speed: dict[str, float] = {}  # measured seconds per work unit, per algorithm
    trials: list[TrialOutcome] = []

    def best_of(algorithm: str | None = None) -> TrialOutcome | None:
        return _best(trials, metric, lambda t: algorithm is None or t.algorithm == algorithm)

    weightings = weightings or [(HistoryWeighting(), fit)]

    def attempt(algorithm: str, params: dict, weighting: int = 0, estimate: float | None = None, weights=None,
                lane: int = 0, lane_threads: int | None = None) -> TrialOutcome:
        """One trial if its estimated seconds (from the measured speed, the prior, or ``estimate``
        when given from measured trials) fit what is left of the budget. ``lane_threads``: the
        trial runs beside another, on ``lane`` with that many threads (round one)."""
        units = work_units(algorithm, params, shape) if estimate is None else 0.0
        measured = algorithm in speed or estimate is not None
        if estimate is None:
            estimate = trial_estimate(algorithm, params, shape, speed.get(algorithm))
        left = deadline - time.monotonic()
        if not fits_in(estimate, left, measured):
            trial = TrialOutcome(algorithm, params, SKIPPED, note=f"estimated {estimate:.0f} s, {max(left, 0):.0f} s of the budget left")
        else:
            matrix_name = "fit" if weighting == 0 else f"fit-{weighting}"
            if weighting:
                runner.add_fit(matrix_name, weightings[weighting][1])
            beside = lane_threads is not None  # then the caller ticks ``waiting``, not two lanes at once
            trial = runner.run(algorithm, params, deadline=deadline, cut_off=cut_off, metric=name, fit=matrix_name,
                               waiting=None if beside else waiting, weights=weights, keep_state=True, lane=lane, threads=lane_threads)
        with bookkeeping:
            if trial.status == DONE and trial.seconds > 0 and units:
                # Measured on a lane's share of the threads in round one: later rounds' estimates err long.
                speed[algorithm] = max(trial.seconds - TRIAL_OVERHEAD_SECONDS, 0.0) / max(units, 1.0)
            trial.weighting = weightings[weighting][0].to_dict() if len(weightings) > 1 or not weightings[0][0].is_plain else {}
            chosen_weighting[id(trial)] = weighting
            trials.append(trial)
            if trial.state_file:  # only the best trial of each algorithm keeps its start state on disk
                kept = best_of(algorithm)
                for other in trials:
                    if other.algorithm == algorithm and other is not kept:
                        runner.drop_state(other)
            if on_trial:
                on_trial(trial, best_of())
        return trial

    chosen_weighting: dict[int, int] = {}  # trial -> index of its weighting
    bookkeeping = threading.Lock()  # trials side by side finish from two threads

    # The lanes' threads live as long as the runner: a trial process dies with the thread that
    # started it (the worker's parent-death signal is per thread), and a lane's next trial,
    # a round later, reuses its process.
    with TrialRunner(fit, targets, threads=threads) as runner, ThreadPoolExecutor(LANES, thread_name_prefix="trial-lane") as lane_pool:
        # Round one: every candidate's defaults, cheapest first (in lanes: the costliest first).
        order = sorted(pool, key=lambda c: work_units(c.algorithm, c.configurations[0], shape))
        pending = {c.algorithm: list(c.configurations[1:]) for c in pool}

        def defaults_of(candidate: Candidate, lane: int = 0, lane_threads: int | None = None) -> None:
            if attempt(candidate.algorithm, candidate.configurations[0], lane=lane, lane_threads=lane_threads).status == SKIPPED and pending[candidate.algorithm]:
                # Too slow for the budget with its defaults: its cheapest configuration may fit.
                cheapest = min(pending[candidate.algorithm], key=lambda p: work_units(candidate.algorithm, p, shape))
                if work_units(candidate.algorithm, cheapest, shape) < work_units(candidate.algorithm, candidate.configurations[0], shape):
                    pending[candidate.algorithm].remove(cheapest)
                    attempt(candidate.algorithm, cheapest, lane=lane, lane_threads=lane_threads)

        def side_by_side(items: list, run: Callable[..., None], recorded: list[str], lane_order: list | None = None) -> None:
            """``run(item, lane, lane_threads)`` for every item, :data:`LANES` at a time (in
            ``lane_order``, default ``items``') where threads allow, else one after another in
            ``items``' order on every thread; their trials are recorded in the order of
            ``recorded`` (their algorithms), as if one after another (stable within an algorithm)."""
            lanes = min(LANES, threads, len(items))
            first = len(trials)
            if lanes > 1:
                _in_lanes(lane_order or items, run, lanes, threads // lanes, waiting, runner.abort, lane_pool, runner.lend)
            else:
                for item in items:
                    run(item)
            trials[first:] = sorted(trials[first:], key=lambda t: recorded.index(t.algorithm))

        # Round one: cheapest first (a short budget still compares them all), or in lanes the
        # costliest first (the others fill the other lane meanwhile); recorded cheapest first.
        side_by_side(order, defaults_of, [candidate.algorithm for candidate in order], lane_order=order[::-1])
        # Each other history weighting, tried on the best configuration so far of every
        # candidate that reads the weights (graph-filter counts only which items were bought),
        # in turn with its other settings: a setting first, then a weighting, and so on.
        for candidate in pool:
            if candidate.algorithm not in VALUE_BLIND:
                pending[candidate.algorithm] = _in_turn(
                    pending[candidate.algorithm], [WEIGHTING_STEP + (k,) for k in range(1, len(weightings))])
        # Round one's estimated seconds are its trials' (in lanes, more than its wall time), and
        # so are the later rounds': the same search whether trials ran side by side or not.
        round_one = sum(_prior_estimate(t.algorithm, t.params, shape) for t in trials if t.status != SKIPPED)
        later_estimated = 0.0

        def admit(algorithm: str, params: dict) -> bool:
            """Whether a later trial may start (the allowance not yet reached), counting it if so."""
            nonlocal later_estimated
            if stop_early and later_estimated >= LATER_ROUNDS_SHARE * round_one:
                return False
            later_estimated += _prior_estimate(algorithm, params, shape)
            return True

        settled = _settled(trials, metric) if stop_early else ""
        ending = settled or _search(pool, pending, best_of, attempt, chosen_weighting, metric, deadline, admit, side_by_side, stop_early)
        # Not in a benchmark's exhaustive search (stop_early False): a tuned peer stays one algorithm.
        parts = _blend_parts(trials, metric) if stop_early and not settled else None
        if parts:
            first, second = parts
            blended = attempt(
                BLEND, {"first": first.algorithm, "first_params": refit_params(first), "second": second.algorithm, "second_params": refit_params(second)},
                chosen_weighting[id(first)], estimate=TRIAL_OVERHEAD_SECONDS + (1 + BLEND_MIXING_SHARE) * (first.seconds + second.seconds),
                weights=list(BLEND_WEIGHTS))
        winner = best_of()
        if parts and winner is blended and not _clear_lead(blended, first, metric):
            winner = first  # the best single trial: the blend's lead is within the noise
        start_state = {}
        if winner is not None:  # read into memory before the runner's folder goes
            start_state = runner.load_state(winner)
            runner.drop_state(winner)
    blend = _blend_record(blended, first, second, winner, metric) if parts else {}
    seconds, lanes = time.monotonic() - started, min(LANES, threads)
    if winner is None:
        reason = f"no candidate finished within the budget of {budget_seconds:.0f} s; fell back to {FALLBACK_ALGORITHM} with its defaults"
        return Choice(FALLBACK_ALGORITHM, {}, metric, trials, budget_seconds, seconds, validation or {}, reason,
                      weighting=weightings[0][0], ending=ending, threads=threads, lanes=lanes)
    reason = _reason(winner, trials, metric)
    if blend and not blend["kept"] and blend["status"] == DONE and blended.metrics[metric] > winner.metrics[metric]:
        reason += (f"; the blend of {first.algorithm} and {second.algorithm} scored {blended.metrics[metric]:.4f} "
                   f"({blend['lead']:+.4f} ± {blend['standard_error']:.4f} s.e.), not more than {BLEND_STANDARD_ERRORS:g} "
                   f"standard errors ahead: not kept")
    return Choice(
        winner.algorithm, refit_params(winner), metric, trials, budget_seconds, seconds, validation or {},
        reason, winner.fitted_settings, weightings[chosen_weighting[id(winner)]][0], ending,
        trial_params=winner.params, blend=blend, start_state=start_state, threads=threads, lanes=lanes,
    )


def _in_lanes(queue: list, run: Callable[..., None], lanes: int, lane_threads: int, waiting, abort: Callable[[], None],
              executor: ThreadPoolExecutor, lend: Callable[[int], None] | None = None) -> None:
    """``run(item, lane, lane_threads)`` for every item of ``queue``, in its order,
    ``lanes`` at a time on ``executor``'s threads (each lane takes the next as it becomes free); ``waiting`` is ticked
    here meanwhile. A lane that finds the queue empty calls ``lend(lane)`` for each lane still
    running, so the last trial takes the idle threads too (on Gowalla graph-filter's trial ran
    alone on one thread for its last 17 s). An exception in a lane is raised here once the lanes have stopped. One
    here (Ctrl-C, or from ``waiting``) empties the queue and calls ``abort`` (which kills the
    running trials' processes), so the lanes end at once instead of finishing their trials."""
    queue = list(queue)
    taking = threading.Lock()
    running: set[int] = set()

    def lane_loop(lane: int) -> None:
        while True:
            with taking:
                if not queue:
                    if lend is not None:
                        for other in running - {lane}:
                            lend(other)
                    running.discard(lane)
                    return
                item = queue.pop(0)
                running.add(lane)
            run(item, lane, lane_threads)

    futures = [executor.submit(lane_loop, lane) for lane in range(lanes)]
    try:
        while wait(futures, timeout=0.5).not_done:
            if waiting:
                waiting()
    except BaseException:
        with taking:
            queue.clear()
        abort()
        wait(futures)
        raise
    for future in futures:
        future.result()


def _best(trials: list[TrialOutcome], metric: str, among: Callable[[TrialOutcome], bool] = lambda trial: True) -> TrialOutcome | None:
    """The best finished trial ``among`` those given: the highest ``metric``, ties to the faster."""
    done = [t for t in trials if t.status == DONE and among(t)]
    return max(done, key=lambda t: (t.metrics[metric], -t.seconds)) if done else None


def _blend_parts(trials: list[TrialOutcome], metric: str) -> tuple[TrialOutcome, TrialOutcome] | None:
    """The best trial of each of the two best algorithms (None with fewer than two)."""
    first = _best(trials, metric, lambda t: t.algorithm != BLEND)
    second = None if first is None else _best(trials, metric, lambda t: t.algorithm not in (BLEND, first.algorithm))
    return None if second is None else (first, second)


def _clear_lead(blend: TrialOutcome, single: TrialOutcome, metric: str) -> bool:
    """Whether the blend leads the best single trial by more than :data:`BLEND_STANDARD_ERRORS`."""
    gap, error = _paired_gap(blend, single)
    return gap > BLEND_STANDARD_ERRORS * error if error > 0 else gap > 0


def _blend_record(trial: TrialOutcome, first: TrialOutcome, second: TrialOutcome, winner: TrialOutcome | None, metric: str) -> dict:
    """What the choice's record says of its blend: the parts, the outcome, and whether it won."""
    record = {"parts": [first.algorithm, second.algorithm], "status": trial.status, "kept": trial is winner}
    if trial.status == DONE:
        gap, error = _paired_gap(trial, first)
        record |= {"weight": trial.fitted_settings.get("weight"), metric: round(trial.metrics[metric], 6),
                   "first_alone": round(first.metrics[metric], 6), "lead": round(gap, 6), "standard_error": round(error, 6)}
    if trial.note:
        record["note"] = trial.note
    return record


def _in_turn(first: list, second: list) -> list:
    """[a1, b1, a2, b2, ...] and the rest of the longer list."""
    merged = []
    for k in range(max(len(first), len(second))):
        merged += first[k:k + 1] + second[k:k + 1]
    return merged


def _search(pool, pending, best_of, attempt, chosen_weighting, metric: str, deadline: float,
            admit: Callable[[str, dict], bool], side_by_side: Callable[..., None], stop_early: bool) -> str:
    """The rounds after the first: each contender's next step, best contender first (side by
    side: each starts from its own algorithm's best), until the budget ends, ``admit(algorithm,
    params)`` refuses a round's first step (the later rounds' allowance) or no contender is
    left. Returns why it ended."""
    stale = {c.algorithm: 0 for c in pool}  # trials in a row without a gain, per algorithm
    out_of_budget = []  # a later trial was skipped: what was left of the budget could not hold it

    def budget_said(reason: str) -> str:
        """Why the search ended: the budget, when it left out a trial the search would have run."""
        return "the budget ran out: a later trial did not fit what was left of it" if out_of_budget else reason

    def next_step(algorithm: str) -> tuple[dict, int]:
        """The settings and the weighting of ``algorithm``'s next trial."""
        taken, best = pending[algorithm][0], best_of(algorithm)
        if isinstance(taken, tuple) and taken[:1] == WEIGHTING_STEP:  # the best settings under another weighting
            return best.params, taken[1]
        return taken, chosen_weighting[id(best)]  # other settings under the best weighting so far

    def step(algorithm: str, lane: int = 0, lane_threads: int | None = None) -> None:
        if time.monotonic() >= deadline:
            return
        (params, weighting), best = next_step(algorithm), best_of(algorithm)
        pending[algorithm].pop(0)
        outcome = attempt(algorithm, params, weighting, lane=lane, lane_threads=lane_threads)
        if outcome.status == SKIPPED:
            out_of_budget.append(algorithm)
        if outcome.status == FAILED:
            pending[algorithm].clear()
        elif outcome.status == DONE:
            gained = outcome.metrics[metric] > best.metrics[metric] * (1 + MIN_GAIN)
            stale[algorithm] = 0 if gained else stale[algorithm] + 1

    while time.monotonic() < deadline:
        leader = best_of()
        if leader is None:
            return "no candidate finished a trial"
        ranked = sorted(
            (c.algorithm for c in pool
             if (best := best_of(c.algorithm)) is not None and best.metrics[metric] >= CLOSE_ENOUGH * leader.metrics[metric]),
            key=lambda a: -best_of(a).metrics[metric],
        )[:CONTENDERS if stop_early else None]
        contenders = [a for a in ranked if pending[a] and (stale[a] < PATIENCE or not stop_early)]
        if not contenders:
            if any(pending[a] for a in ranked):
                return budget_said(f"stopped early: the last {PATIENCE} trials of each contender ({', '.join(ranked)}) gained less than {MIN_GAIN:.1%}")
            return budget_said("every alternative of the contenders was tried")
        # Admitted in order before the round starts: the same steps however its lanes are timed.
        admitted = [a for a in contenders if admit(a, next_step(a)[0])]
        if not admitted:
            return budget_said(f"stopped early: later rounds' trials were estimated at {LATER_ROUNDS_SHARE:g} times round one's")
        side_by_side(admitted, step, admitted)
    return "the budget ran out"



def _runner_up(winner: TrialOutcome, trials: list[TrialOutcome], metric: str) -> TrialOutcome | None:
    """The best finished trial of any other algorithm than the winner's (a blend that was not
    kept is none: the record says why, :func:`_blend_record`)."""
    return _best(trials, metric, lambda t: t.algorithm not in (winner.algorithm, BLEND))


def _paired_gap(winner: TrialOutcome, other: TrialOutcome) -> tuple[float, float]:
    """Mean per-customer difference of the two trials' figures and its standard error (paired:
    the same validation customers)."""
    difference = winner.per_customer - other.per_customer
    error = difference.std(ddof=1) / np.sqrt(len(difference)) if len(difference) > 1 else float("nan")
    return float(difference.mean()), float(error)


def _settled(trials: list[TrialOutcome], metric: str) -> str:
    """Why round one settled the choice ("" when it did not): its best trial leads every other
    algorithm by more than :data:`SETTLED_STANDARD_ERRORS` paired standard errors."""
    leader = _best(trials, metric)
    runner_up = None if leader is None else _runner_up(leader, trials, metric)
    if runner_up is None:
        return ""
    gap, error = _paired_gap(leader, runner_up)
    if not error > 0 or gap <= SETTLED_STANDARD_ERRORS * error:
        return ""
    return (f"stopped after round one: {leader.algorithm} led the next algorithm, {runner_up.algorithm}, by "
            f"{gap / error:.1f} standard errors (more than {SETTLED_STANDARD_ERRORS:g})")


def _reason(winner: TrialOutcome, trials: list[TrialOutcome], metric: str) -> str:
    """Why the winner won: its figure against the best of every other algorithm, with the
    paired standard error of the difference over the same validation customers."""
    weighting = f" ({HistoryWeighting.from_dict(winner.weighting).describe()})" if winner.weighting else ""
    name = winner.algorithm
    if name == BLEND:
        name = (f"the blend of {winner.params['first']} and {winner.params['second']} "
                f"(weight {winner.fitted_settings.get('weight', winner.params.get('weight'))} on the second)")
    text = f"{name}{weighting} had the best validation {metric}, {winner.metrics[metric]:.4f}"
    runner_up = _runner_up(winner, trials, metric)
    if runner_up is None:
        return text + " (no other algorithm finished a trial)"
    gap, error = _paired_gap(winner, runner_up)
    ratio = winner.metrics[metric] / runner_up.metrics[metric] if runner_up.metrics[metric] > 0 else float("inf")
    return (
        f"{text}: {ratio:.3f}x the next algorithm, {runner_up.algorithm} ({runner_up.metrics[metric]:.4f}; "
        f"difference {gap:+.4f} ± {error:.4f} s.e., paired over {len(winner.per_customer)} customers)"
    )


def choose_for_log(
    log,
    *,
    budget_seconds: float | None = None,
    metric: str = DEFAULT_METRIC,
    memory_limit_gb: float = DEFAULT_MEMORY_LIMIT_GB,
    seed: int = 42,
    threads: int = 1,
    weighting: HistoryWeighting | None = None,
    pool: list[Candidate] | None = None,
    on_start: Callable[[float, dict], None] | None = None,
    on_trial: Callable[[TrialOutcome, TrialOutcome | None], None] | None = None,
    waiting: Callable[[], None] | None = None,
) -> Choice:
    """The choice for a purchase log: its validation split, then :func:`choose`.
    ``weighting`` None: the history weighting is chosen too (:func:`weightings_to_compare`);
    given: every trial uses it. ``budget_seconds`` None: :func:`default_budget` of the data. ``on_start(budget, split)``
    is called once the split is made and the budget known."""
    from .validation import validation_split

    parse_metric(metric)  # a bad metric fails before the split, not after
    split = validation_split(log, seed=seed)
    described = split.describe()
    compared = [weighting] if weighting is not None else weightings_to_compare(log, split.fit)
    described["history_weightings"] = [w.to_dict() for w in compared]
    if not described["customers"]:
        raise ValueError("the data has no customer with purchases to hold out for validation; name an algorithm with --algorithm")
    budget = float(budget_seconds) if budget_seconds is not None else default_budget(
        split.fit, split.targets, memory_limit_gb=memory_limit_gb, pool=pool)
    if on_start:
        on_start(budget, described)
    return choose(
        split.fit_matrix(compared[0]), split.targets, budget_seconds=budget, metric=metric, memory_limit_gb=memory_limit_gb,
        threads=threads, validation=described, on_trial=on_trial, waiting=waiting,
        weightings=[(w, split.fit_matrix(w)) for w in compared], pool=pool,
    )


def weightings_to_compare(log, plain: sp.csr_matrix) -> list[HistoryWeighting]:
    """The history weightings the choice compares when none is given: none at all first;
    then compressed or capped repeats, where the store has repeats (a cell above 1); then
    recency half-lives of 30 and 90 days (with compressed repeats), where the data has
    times and spans more than a half-life. Validation decides; "none" stays a choice."""
    choices = [HistoryWeighting()]
    if plain.nnz and plain.data.max() > 1.0:
        choices += [HistoryWeighting(None, "log"), HistoryWeighting(None, "once")]
    if log.timestamp is not None and len(log.timestamp):
        span_days = (int(log.timestamp.max()) - int(log.timestamp.min())) / 86_400
        repeats = "log" if len(choices) > 1 else "count"
        choices += [HistoryWeighting(days, repeats) for days in (30.0, 90.0) if span_days > days]
    return choices
