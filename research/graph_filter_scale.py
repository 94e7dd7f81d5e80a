"""Where a graph-filter fit and its top lists spend their time on a large catalogue (issue 17).

    python -m research.graph_filter_scale PURCHASES.parquet [--threads 1] [--customers 2000] [--param k=v ...]

Times, on a demo-generator store (``recommender demo-data --items 100000 ...``): the
randomised SVD, the sharpening basis, the held-out choice of s, the whole fit, then
top-50 lists with reasons for ``--customers`` customers (the cost per customer of the
training-time top lists, which cover every customer), and plain top-20 scoring of the same
customers (batch scoring's cost per customer). ALS is timed the same way for comparison.
"""

from __future__ import annotations

import argparse
import functools
import time

import numpy as np
from threadpoolctl import threadpool_limits

import recommender.algorithms.graph_filter as graph_filter
from recommender.algorithms import create_algorithm, parse_params
from recommender.interactions import Interactions
from recommender.purchases import load_purchases
from recommender.topn import compute_top_lists


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--param", action="append", default=[])
    parser.add_argument("--algorithms", default="graph-filter,als")
    args = parser.parse_args()
    matrix = Interactions.from_log(load_purchases(args.data)).matrix
    print(f"{matrix.shape[0]:,} customers x {matrix.shape[1]:,} items, {matrix.nnz:,} interactions; {args.threads} BLAS threads")
    seconds: dict[str, list[float]] = {}

    def timed(owner, name):
        function = getattr(owner, name)

        @functools.wraps(function)
        def wrapper(*a, **k):
            started = time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                seconds.setdefault(name, []).append(round(time.perf_counter() - started, 1))

        setattr(owner, name, wrapper)

    for name in ("_fit_on", "_fit_sharpening_basis"):
        timed(graph_filter.GraphFilter, name)
    for name in ("best_setting", "randomized_svd"):
        if hasattr(graph_filter, name):
            timed(graph_filter, name)
    customers = np.random.default_rng(0).choice(matrix.shape[0], min(args.customers, matrix.shape[0]), replace=False)
    customers.sort()
    rows = matrix[customers]
    with threadpool_limits(args.threads, "blas"):
        for algorithm in args.algorithms.split(","):
            seconds.clear()
            model = create_algorithm(algorithm, parse_params(algorithm, args.param) if algorithm == "graph-filter" else {})
            started = time.perf_counter()
            model.fit(matrix)
            fit = time.perf_counter() - started
            started = time.perf_counter()
            compute_top_lists(model, rows, 50, workers=1)
            lists = time.perf_counter() - started
            started = time.perf_counter()
            model.recommend(rows, 20, customers=customers)
            scoring = time.perf_counter() - started
            per = 1000 / len(customers)
            print(f"{algorithm}: fit {fit:.1f} s {model.fitted_settings()}; top-50 lists with reasons {lists * per:.2f} s per 1,000 customers "
                  f"({lists / len(customers) * matrix.shape[0]:.0f} s for all); top-20 scoring {scoring * per:.2f} s per 1,000 "
                  f"({scoring / len(customers) * matrix.shape[0]:.0f} s for all); parts {seconds}", flush=True)


if __name__ == "__main__":
    main()
