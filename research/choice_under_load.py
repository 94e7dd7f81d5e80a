"""Does the automatic choice run the same search on a busy machine as on a quiet one?

For each store, the product's choice (``choose_for_log``, as ``make bench-stores`` calls it
on the store's training part) runs twice: once as it is, and once with ``--busy`` processes
spinning on the CPU from the moment round one's ``--after``-th trial is done. The script
prints both runs' trials (algorithm, settings, history weighting, validation figure) and
whether they are the same, and the choice's seconds each time. The busy processes end with
the run.

    python -m research.choice_under_load --stores online-retail,demo-sparse --busy 2
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from recommender.selection import choice as choice_module
from recommender.selection import choose_for_log

from .common import parser, run_log

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_stores import DEMO_SHAPES, demo, online_retail  # noqa: E402  (the benchmark's own stores)


def searched(store: str, busy: int, after: int) -> tuple[list[str], float]:
    """The choice's trials on ``store``, one line each without their seconds, and its seconds,
    with ``busy`` spinning processes started once ``after`` trials are done (0: none)."""
    logs = demo(DEMO_SHAPES[store]) if store.startswith("demo") else online_retail()
    spinning: list[subprocess.Popen] = []
    done = 0

    def on_trial(trial, best) -> None:
        nonlocal done
        done += 1
        if busy and done == after:
            spinning.extend(subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy))

    try:
        choice = choose_for_log(logs[0], threads=2, on_trial=on_trial)
    finally:
        for process in spinning:
            process.kill()
    lines = [f"{t.algorithm} {t.params} {t.weighting} {t.status} {t.metrics.get(choice.metric, float('nan')):.4f}" for t in choice.trials]
    return lines + [f"ended: {choice.ending}"], choice.seconds


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--stores", default="online-retail,demo-sparse", help="from: online-retail, " + ", ".join(DEMO_SHAPES))
    arguments.add_argument("--busy", type=int, default=2, help="spinning processes in the busy run (default 2: one per core here)")
    arguments.add_argument("--after", type=int, default=4, help="start them once this many trials are done (default 4)")
    args = arguments.parse_args()
    log = run_log(__file__)
    log(f"later rounds' allowance: {choice_module.LATER_ROUNDS_SHARE:g} times round one's")
    for store in args.stores.split(","):
        quiet, quiet_seconds = searched(store, 0, args.after)
        busy, busy_seconds = searched(store, args.busy, args.after)
        log(f"## {store}: choice {quiet_seconds:.1f} s as it is, {busy_seconds:.1f} s with {args.busy} busy processes "
            f"from trial {args.after} on; {'the same trials' if quiet == busy else 'DIFFERENT trials'}")
        for left, right in zip(quiet, busy):
            log(f"   {left}" if left == right else f" - {left}\n + {right}")
        for extra in quiet[len(busy):]:
            log(f" - {extra}")
        for extra in busy[len(quiet):]:
            log(f" + {extra}")


if __name__ == "__main__":
    main()
