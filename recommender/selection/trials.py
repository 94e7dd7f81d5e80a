"""Trials in a child process that can be stopped, so a time budget is kept.

A fit cannot be interrupted from inside (it runs in BLAS, LAPACK and implicit's
threads), so each trial runs in a worker process (:mod:`.worker`) and the parent waits
for its answer only until the deadline; a trial still running then is killed with its
whole process group. The worker writes only a finished trial's start state, complete
or not at all (:mod:`.worker`), so a kill loses nothing but the trial. The matrices go
to the worker through .npy files it maps copy-on-write, not through a pipe: nothing
large is copied, and a restarted worker maps them again in milliseconds. One worker
serves trial after trial (imports paid once) until a kill.
"""

from __future__ import annotations

import itertools
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..weights import HistoryWeighting
from .worker import load_state, save_matrix

DONE, STOPPED, FAILED, SKIPPED = "done", "stopped", "failed", "skipped"
_POLL_SECONDS = 0.5


@dataclass
class TrialOutcome:
    """What one trial gave: validation figures and seconds, or why it has none."""

    algorithm: str
    params: dict
    status: str  # DONE, STOPPED (over the budget), FAILED, SKIPPED (would not fit the budget)
    metrics: dict = field(default_factory=dict)
    per_customer: np.ndarray | None = None
    fit_seconds: float = 0.0
    seconds: float = 0.0  # wall time of the trial: fit, validation scoring and the hand-over
    fitted_settings: dict = field(default_factory=dict)
    note: str = ""
    weighting: dict = field(default_factory=dict)  # the history weighting the trial fitted on ({}: plain)
    state_file: str = ""  # the fitted algorithm's start state, while the runner keeps it ("": none)
    threads: dict = field(default_factory=dict)  # the threads in force during the trial, per runtime ("blas", "openmp")
    lent_threads: int = 0  # the threads it was lent once the trial beside it had ended (0: none)

    def record(self) -> dict:
        """The trial as JSON-able data for manifests and reports."""
        shown = {
            "algorithm": self.algorithm, "params": self.params, "status": self.status,
            "metrics": {k: round(v, 6) for k, v in self.metrics.items()},
            "fit_seconds": round(self.fit_seconds, 2), "seconds": round(self.seconds, 2),
        }
        if self.weighting:
            shown["history_weighting"] = self.weighting
        if self.fitted_settings:
            shown["fitted_settings"] = self.fitted_settings
        if self.threads:
            shown["threads"] = self.threads
        if self.lent_threads:
            shown["lent_threads"] = self.lent_threads
        if self.note:
            shown["note"] = self.note
        return shown


def settings_text(params: dict) -> str:
    """A trial's settings as people read them ("defaults" when none; EASE's memory limit,
    the same for every trial, left out)."""
    return ", ".join(f"{k}={v}" for k, v in params.items() if k != "memory_limit_gb") or "defaults"


def history_text(record: dict) -> str:
    """How a recorded trial (:meth:`TrialOutcome.record`) counted history."""
    return HistoryWeighting.from_dict(record.get("history_weighting")).describe()


def weightings_differ(records: list[dict]) -> bool:
    """Whether recorded trials differ in history weighting (then tables show it: otherwise
    two trials of one algorithm and settings would look the same)."""
    return len({history_text(record) for record in records}) > 1


class TrialRunner:
    """Runs trials in worker processes against fixed fitting data and validation targets.

    Trials on different lanes run in different worker processes, so two threads of the
    caller may run two trials at once (the choice does); the matrices and the start states
    are shared through the one folder. A worker process dies with the *thread* that started
    it (Linux's parent-death signal, :mod:`.worker`), so a lane must be driven from threads
    that outlive its use: the choice keeps its lanes' threads for the runner's lifetime."""

    def __init__(self, fit: sp.csr_matrix, targets: sp.csr_matrix, *, threads: int = 1):
        self.threads = max(1, int(threads))
        self._folder = Path(tempfile.mkdtemp(prefix="recommender-trials-"))
        save_matrix(self._folder, "fit", sp.csr_matrix(fit, dtype=np.float32))
        save_matrix(self._folder, "targets", sp.csr_matrix(targets, dtype=np.float32))
        self._fits = {"fit"}
        self._fits_lock = threading.Lock()
        self._state_numbers = itertools.count(1)  # next() is atomic: lanes never share a file name
        self._workers: dict[int, _Worker] = {}
        self._aborted = False

    def add_fit(self, name: str, matrix: sp.csr_matrix) -> None:
        """Another fitting matrix (the same data under another history weighting) that trials
        may name; written once, before a trial asks for it. Two lanes may ask for the same one
        at once: without the lock the second rewrote the files while the first one's trial
        mapped them, and that trial failed on a half-written matrix."""
        with self._fits_lock:
            if name not in self._fits:
                save_matrix(self._folder, name, sp.csr_matrix(matrix, dtype=np.float32))
                self._fits.add(name)

    def __enter__(self) -> TrialRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.stop_workers()
        shutil.rmtree(self._folder, ignore_errors=True)

    def stop_workers(self) -> None:
        """Kill every worker process: a trial running in one ends as failed at once (any
        thread may call this; the next trial on a lane starts a new process)."""
        for worker in list(self._workers.values()):
            worker.stop()

    def lend(self, lane: int) -> None:
        """Let the trial running on ``lane`` take every thread the runner has, for the rest of
        it (the caller's lane beside it has nothing more to run); nothing when it has ended."""
        worker = self._workers.get(lane)
        if worker is not None:
            worker.lend()

    def abort(self) -> None:
        """Kill every worker and start no trial any more (from any thread: an interrupted choice)."""
        self._aborted = True
        self.stop_workers()

    def run(
        self,
        algorithm: str,
        params: dict,
        *,
        deadline: float,
        cut_off: int = 20,
        metric: str = "ndcg",
        fit: str = "fit",
        waiting: Callable[[], None] | None = None,
        weights: list[float] | None = None,
        keep_state: bool = False,
        lane: int = 0,
        threads: int | None = None,
    ) -> TrialOutcome:
        """Run one trial; stop it when ``deadline`` (``time.monotonic()``) passes first.

        ``waiting`` is called about twice a second while the trial runs (progress bars).
        ``weights``: a blend's weights, the best of which the trial keeps (:mod:`.worker`).
        ``keep_state``: the worker saves the fitted algorithm's start state, if it has one,
        until :meth:`drop_state` or the runner closes (the caller drops what it will not use:
        graph-filter's is as large as its basis).
        ``lane``: which worker process runs it (one trial at a time each); ``threads``: its
        BLAS and OpenMP threads (default: the runner's), set for this trial inside the lane's
        process, which keeps running (and keeps graph-filter's remembered basis) when the
        next trial asks for another count.
        """
        outcome = TrialOutcome(algorithm, dict(params), STOPPED)
        if time.monotonic() >= deadline:
            return outcome
        interrupted = TrialOutcome(algorithm, dict(params), FAILED, note="interrupted")
        if self._aborted:
            return interrupted
        if fit not in self._fits:
            raise ValueError(f"no fitting matrix named {fit!r}; add it with add_fit first")
        threads = max(1, int(threads or self.threads))
        request = {"algorithm": algorithm, "params": params, "fit": fit, "cut_off": cut_off, "metric": metric, "threads": threads}
        if keep_state:
            request["state"] = str(self._folder / f"state-{next(self._state_numbers)}.npz")
        if weights:
            request["weights"] = list(weights)
        worker = self._workers.get(lane)
        if worker is None:
            worker = self._workers[lane] = _Worker(self._folder, self.threads)
        started = time.monotonic()
        try:
            if not worker.start(deadline, waiting):
                outcome.note = "the budget ran out while the trial process started"
                return outcome
            if self._aborted:  # while it started: abort() may have missed the new process
                worker.stop()
                return interrupted
            # A trial's seconds leave out the worker's start (imports), paid once per worker.
            started = time.monotonic()
            answer = worker.ask(request, deadline, waiting)
        except (BrokenPipeError, OSError):
            answer = None
            worker.stop()
            outcome.status, outcome.note = FAILED, f"the trial process ended unexpectedly: {worker.log_tail()}"
        outcome.seconds = time.monotonic() - started
        if answer is None:
            if outcome.status == STOPPED:
                worker.stop()
                outcome.note = f"stopped after {outcome.seconds:.1f} s: the budget ran out"
            return outcome
        if not answer.get("ok"):
            outcome.status, outcome.note = FAILED, answer.get("error", "unknown error")
            return outcome
        outcome.status = DONE
        outcome.metrics = answer["metrics"]
        outcome.per_customer = np.asarray(answer["per_customer"], dtype=np.float64)
        outcome.fit_seconds = answer["fit_seconds"]
        outcome.fitted_settings = answer.get("fitted_settings") or {}
        outcome.state_file = answer.get("state") or ""
        outcome.threads = answer.get("threads") or {}
        outcome.lent_threads = int(answer.get("lent_threads") or 0)
        if answer.get("weights"):
            outcome.note = f"weights tried ({metric}@{cut_off}): " + ", ".join(f"{w:g}: {figure:.4f}" for w, figure in answer["weights"])
        return outcome

    def load_state(self, trial: TrialOutcome) -> dict[str, np.ndarray]:
        """The start state ``trial`` saved ({} when none or dropped), read into memory."""
        return load_state(trial.state_file) if trial.state_file and os.path.exists(trial.state_file) else {}

    def drop_state(self, trial: TrialOutcome) -> None:
        """Delete ``trial``'s start state (graph-filter's is as large as its basis)."""
        if trial.state_file:
            Path(trial.state_file).unlink(missing_ok=True)
            trial.state_file = ""


class _Worker:
    """One worker process (:mod:`.worker`), started when first asked; ``threads``: the most any
    of its trials may use (each request sets its own count, up to that)."""

    def __init__(self, folder: Path, threads: int):
        self.folder, self.threads = folder, threads
        self._process: subprocess.Popen | None = None
        self._ready = False  # it said it was ready: SIGUSR1 no longer ends it (it ignores it between trials)
        self._log = None

    def start(self, deadline: float, waiting) -> bool:
        """Start the process unless it runs; False when the deadline passes before it is ready."""
        if self._process is not None and self._process.poll() is None:
            return True
        self.stop()
        environment = dict(os.environ)
        # The worker imports this very package, wherever the parent found it.
        package_root = str(Path(__file__).resolve().parents[2])
        environment["PYTHONPATH"] = os.pathsep.join([package_root, *filter(None, [environment.get("PYTHONPATH")])])
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            environment[name] = str(self.threads)
        self._log = tempfile.TemporaryFile(prefix="recommender-trial-log-")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "recommender.selection.worker", str(self.folder)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True, env=environment,
            start_new_session=True,  # its own process group: a kill reaches every thread and child
        )
        if self._answer(deadline, waiting) is None:
            self.stop()
            return False
        self._ready = True
        return True

    def ask(self, request: dict, deadline: float, waiting) -> dict | None:
        """Send one request; its answer, or None when the deadline passes first."""
        process = self._process
        if process is None:
            raise BrokenPipeError("the worker was stopped")
        try:
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
        except ValueError:  # closed by stop() in another thread
            raise BrokenPipeError("the worker was stopped") from None
        return self._answer(deadline, waiting)

    def _answer(self, deadline: float, waiting) -> dict | None:
        """The worker's next JSON line, or None when the deadline passes first.
        Raises BrokenPipeError when the worker dies (killed by the kernel for memory, say, or
        by :meth:`stop` from another thread: that also closes the pipe being watched, which
        epoll then silently forgets, so the process is checked on every poll too)."""
        process = self._process
        if process is None:
            raise BrokenPipeError("the worker was stopped")
        with selectors.DefaultSelector() as selector:
            try:
                selector.register(process.stdout, selectors.EVENT_READ)
            except ValueError:  # closed by stop() in another thread before we looked
                raise BrokenPipeError("the worker was stopped") from None
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                try:
                    ready = selector.select(min(_POLL_SECONDS, remaining))
                    line = process.stdout.readline() if ready else None
                except ValueError:  # the pipe was closed by stop() in another thread
                    raise BrokenPipeError("the worker was stopped") from None
                if line == "":
                    process.wait()
                    raise BrokenPipeError(f"exit code {process.returncode}")
                if line is not None:
                    return json.loads(line)
                if process.poll() is not None:
                    raise BrokenPipeError(f"exit code {process.returncode}")
                if waiting:
                    waiting()

    def lend(self) -> None:
        """SIGUSR1: the running trial may use all of this worker's threads (ignored between trials)."""
        process = self._process
        if process is not None and self._ready and process.poll() is None:
            try:
                os.kill(process.pid, signal.SIGUSR1)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        process, self._process = self._process, None
        self._ready = False
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait()
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def log_tail(self) -> str:
        if self._log is None:
            return "no log"
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else "no message (killed, perhaps for lack of memory)"
