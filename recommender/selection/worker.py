"""The child process that runs trials: ``python -m recommender.selection.worker FOLDER``.

The parent (:class:`recommender.selection.trials.TrialRunner`) writes the fitting
matrices (one per history weighting, named in each request) and the validation targets
into FOLDER as .npy files; this process maps
them (copy-on-write, so the pages are shared with the page cache, not duplicated),
then reads one JSON request per line on stdin and answers one JSON line on stdout:

    {"algorithm": "als", "params": {...}, "fit": "fit", "cut_off": 20, "metric": "ndcg", "threads": 2}
    -> {"ok": true, "metrics": {...}, "per_customer": [...], "fit_seconds": ..., "score_seconds": ..., "fitted_settings": {...},
        "threads": {"blas": 2, "openmp": 2}}
    -> {"ok": false, "error": "one line"}

``"threads"`` is set for that trial alone, in the BLAS and the OpenMP runtimes (the answer
says what was in force; ``"lent_threads"`` what the parent lent it later with SIGUSR1, once
the trial beside it had ended), so one process serves trials of any thread count: a lane of the
choice runs one-thread trials beside another lane, then trials on every thread alone, without
a new process (a second's imports on a small store) or the loss of graph-filter's remembered
basis (its SVD, most of a large store's trial).

A blend's request may list ``"weights"``: the blend is fitted once, scored at each, and the
best kept (its figures, ``"weight"`` in its fitted settings, every weight's figure under
``"weights"``). A request may name a ``"state"`` file: the fitted algorithm's start state
(:meth:`~recommender.algorithms.base.Algorithm.start_state`, graph-filter's basis), if it has
one, is saved there (.npz) and the answer names it, so the final fit can start from the
winner's.

The only file it writes is that state, under a temporary name renamed when complete, inside
FOLDER: killing it at any moment (the parent does when a trial overruns the budget) leaves
nothing half-written that anyone reads, and the parent removes FOLDER.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .. import parallel


def load_matrix(folder: Path, name: str) -> sp.csr_matrix:
    shape = tuple(json.loads((folder / f"{name}.json").read_text())["shape"])
    parts = [np.load(folder / f"{name}_{part}.npy", mmap_mode="c") for part in ("data", "indices", "indptr")]
    return sp.csr_matrix(tuple(parts), shape=shape, copy=False)


def save_matrix(folder: Path, name: str, matrix: sp.csr_matrix) -> None:
    for part in ("data", "indices", "indptr"):
        np.save(folder / f"{name}_{part}.npy", getattr(matrix, part), allow_pickle=False)
    (folder / f"{name}.json").write_text(json.dumps({"shape": list(matrix.shape)}))


def run_trial(request: dict, fit: sp.csr_matrix, targets: sp.csr_matrix) -> dict:
    """Fit one configuration on ``fit`` and score it on the customers with targets."""
    from threadpoolctl import threadpool_limits

    from ..algorithms import create_algorithm
    from ..evaluation.evaluate import run_blend_evaluations, run_evaluation
    from ..evaluation.metrics import accuracy_at_k, per_customer_accuracy

    cut_off, metric = int(request.get("cut_off", 20)), request.get("metric", "ndcg")
    weights = request.get("weights")  # a blend's weights to choose from on these targets
    with threadpool_limits(int(request.get("threads", 1))), _lendable() as lent:  # BLAS and OpenMP (implicit's threads) alike
        in_force = threads_in_force()
        algorithm = create_algorithm(request["algorithm"], request.get("params") or {})
        started = time.perf_counter()
        algorithm.fit(fit)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        if weights:
            runs = run_blend_evaluations(algorithm, fit, targets, cut_off, weights)
            figures = {w: accuracy_at_k(run.hits, run.n_relevant, cut_off)[metric] for w, run in runs.items()}
            chosen = max(figures, key=lambda w: (figures[w], -w))  # ties: the smaller share of the runner-up
            algorithm.config.weight, run = chosen, runs[chosen]
        else:
            run = run_evaluation(algorithm, fit, targets, cut_off)
        score_seconds = time.perf_counter() - started
    per_customer = per_customer_accuracy(run.hits, run.n_relevant, cut_off)[metric]
    answer = {
        "ok": True,
        "metrics": {f"{name}@{cut_off}": value for name, value in accuracy_at_k(run.hits, run.n_relevant, cut_off).items()},
        "per_customer": np.round(per_customer, 6).tolist(),
        "fit_seconds": fit_seconds,
        "score_seconds": score_seconds,
        "fitted_settings": algorithm.fitted_settings() | ({"weight": algorithm.config.weight} if weights else {}),
        "threads": in_force,
    }
    if lent:
        answer["lent_threads"] = lent[0]
    if weights:
        answer["weights"] = [[w, figure] for w, figure in figures.items()]
    if request.get("state") and (state := algorithm.start_state()):
        answer["state"] = save_state(Path(request["state"]), state)
    return answer


@contextlib.contextmanager
def _lendable():
    """While a trial runs, SIGUSR1 (from the parent, once the trial beside it in the other lane
    has ended) lends it every thread this process was started with (its OPENBLAS_NUM_THREADS).
    Python runs the handler in the main thread between library calls, so no BLAS call is cut
    into. Yields a list that holds, once lent, the BLAS's thread count after the lend."""
    lent: list[int] = []
    most = int(os.environ.get("OPENBLAS_NUM_THREADS", "1"))

    def lend(signum, frame) -> None:
        if not lent:
            parallel.lend_threads(most)
            lent.append(threads_in_force().get("blas", most))  # what the BLAS took, as the answer says

    previous = signal.signal(signal.SIGUSR1, lend)
    try:
        yield lent
    finally:
        signal.signal(signal.SIGUSR1, previous)
        parallel.end_lending()


def threads_in_force() -> dict[str, int]:
    """The thread count each loaded runtime ("blas", "openmp") uses now (the most, if several)."""
    from threadpoolctl import threadpool_info

    found: dict[str, int] = {}
    for pool in threadpool_info():
        found[pool["user_api"]] = max(found.get(pool["user_api"], 0), int(pool["num_threads"]))
    return found


def load_thread_runtimes() -> None:
    """Load implicit's compiled code, and with it its OpenMP runtime, before any trial: a
    request's thread limit reaches only the runtimes loaded when it is set."""
    import implicit.cpu.als  # noqa: F401


def save_state(path: Path, state: dict[str, np.ndarray]) -> str:
    """Write a start state as plain arrays (.npz, no pickles), complete or not at all."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as file:
        np.savez(file, **state)
    os.replace(partial, path)
    return str(path)


def load_state(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as arrays:
        return {name: arrays[name] for name in arrays.files}


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (a killed ``recommender train``
    must not leave a trial running on); elsewhere the closed stdin ends it after its trial."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(folder: str) -> int:
    _die_with_parent()
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # threads lent between trials: nothing to lend them to
    from ..algorithms.graph_filter import remember_last_basis

    # Trials of graph-filter's alternatives share its costly basis (same matrix, rank and seed).
    remember_last_basis()
    load_thread_runtimes()
    # Answers travel on the original stdout; anything a library prints goes to stderr.
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    folder_path = Path(folder)
    targets = load_matrix(folder_path, "targets")
    fits: dict[str, sp.csr_matrix] = {}  # one fitting matrix per history weighting, mapped when first asked for
    answers.write(json.dumps({"ready": True}) + "\n")
    answers.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            name = request.get("fit", "fit")
            if name not in fits:
                fits[name] = load_matrix(folder_path, name)
            answer = run_trial(request, fits[name], targets)
        except (ValueError, MemoryError, np.linalg.LinAlgError) as error:
            # A configuration this data cannot take (EASE above its memory limit, a bad
            # setting): reported as a failed trial, and the next one runs.
            answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
