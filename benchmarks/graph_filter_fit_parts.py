"""Seconds spent in each part of a default graph-filter fit on Gowalla's train split.

    PYTHONPATH=. python benchmarks/graph_filter_fit_parts.py [DATA_DIR]

Wraps the fit's steps (the randomised SVD, the sharpening basis, the held-out choice of
the sharpening strength) with timers, fits once on two BLAS threads, and prints the
total and each step's seconds (a step that runs twice, for the held-out fit and the
final one, is listed twice). DATA_DIR defaults to $DATA_DIR, else ../shared/data/gowalla.

The steps are private methods of ``GraphFilter`` (``STEPS``): when a refactor renames
one, the script stops with the missing name instead of timing less than it says.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from pathlib import Path

import sklearn.utils.extmath
from threadpoolctl import threadpool_limits

import recommender.algorithms.graph_filter as graph_filter
from recommender.algorithms import create_algorithm
from recommender.evaluation import load_lightgcn, split_matrices

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("_fit_on", "_fit_sharpening_basis", "_blend_and_step_for")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", nargs="?", type=Path, default=Path(os.environ.get("DATA_DIR", ROOT.parent / "shared" / "data" / "gowalla")))
    data = parser.parse_args().data_dir
    train, _ = split_matrices(*load_lightgcn(data / "train.txt", data / "test.txt"))
    seconds: dict[str, list[float]] = {}

    def timed(name, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds.setdefault(name, []).append(round(time.perf_counter() - started, 1))

        return wrapper

    algorithm_class = type(create_algorithm("graph-filter", {}))
    missing = [name for name in STEPS if not hasattr(algorithm_class, name)]
    missing += [] if hasattr(graph_filter, "best_setting") else ["graph_filter.best_setting"]
    if missing:
        raise SystemExit(f"the graph-filter fit no longer has {', '.join(missing)}: update {Path(__file__).name}")
    for name in STEPS:
        setattr(algorithm_class, name, timed(name, getattr(algorithm_class, name)))
    sklearn.utils.extmath.randomized_svd = timed("randomized_svd", sklearn.utils.extmath.randomized_svd)
    graph_filter.best_setting = timed("best_setting (held-out choice of s)", graph_filter.best_setting)
    with threadpool_limits(2, "blas"):
        started = time.perf_counter()
        create_algorithm("graph-filter", {}).fit(train)
    print(f"fit {time.perf_counter() - started:.1f} s")
    for name, values in seconds.items():
        print(f"  {name}: {values}")


if __name__ == "__main__":
    main()
