"""Two ways to cut graph-filter's batch scoring, measured (issue 17, docs/benchmarks.md,
"Graph-filter on large catalogues", 2026-12-04):

    python -m research.graph_filter_batch PURCHASES.parquet [--customers 1200] [--chunks 32,64,128,256,473,1024]

Fits graph-filter and ALS on the store (two BLAS threads), then on one thread: the cost per
customer of ``recommend(rows, 20)`` in chunks of each size (two passes), and graph-filter's
live-answer pruning (``graph_filter_live.row_top``) one customer at a time against the batch
product in chunks of 100, with how many customers got the same 20 items.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recommender.algorithms import create_algorithm
from recommender.algorithms import graph_filter_live as live
from recommender.interactions import Interactions
from recommender.purchases import load_purchases

N = 20


def per_customer_ms(algorithm, history: sp.csr_matrix, customers: np.ndarray, chunk: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(customers), chunk):
        algorithm.recommend(history[start : start + chunk], N, customers=customers[start : start + chunk])
    return (time.perf_counter() - started) / len(customers) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data")
    parser.add_argument("--customers", type=int, default=1200)
    parser.add_argument("--chunks", default="32,64,128,256,473,1024")
    args = parser.parse_args()
    matrix = Interactions.from_log(load_purchases(args.data)).matrix
    customers = np.sort(np.random.default_rng(0).choice(matrix.shape[0], min(args.customers, matrix.shape[0]), replace=False))
    history = sp.csr_matrix(matrix[customers], dtype=np.float32)
    chunks = [int(size) for size in args.chunks.split(",")]
    for name in ("graph-filter", "als"):
        with threadpool_limits(2, "blas"):
            algorithm = create_algorithm(name, {})
            started = time.perf_counter()
            algorithm.fit(matrix)
            fit = time.perf_counter() - started
        if hasattr(algorithm, "warm_up"):
            algorithm.warm_up()
        with threadpool_limits(1, "blas"):
            algorithm.recommend(history[:64], N, customers=customers[:64])
            for _ in range(2):
                figures = ", ".join(f"{size}: {per_customer_ms(algorithm, history, customers, size):.2f}" for size in chunks)
                print(f"{name} (fit {fit:.0f} s, {matrix.shape[1]:,} items) ms a customer by chunk rows: {figures}", flush=True)
            if name == "graph-filter" and live.can_prune(algorithm):
                batch = per_customer_ms(algorithm, history, customers, 100)
                expected = np.concatenate([algorithm.recommend(history[s : s + 100], N)[0] for s in range(0, len(customers), 100)])
                started, given_up, same = time.perf_counter(), 0, 0
                for k in range(len(customers)):
                    found = live.row_top(algorithm, history[k], N, True, None)
                    if found is None:
                        given_up += 1
                    else:
                        same += int(np.array_equal(found[0][0], expected[k]))
                single = (time.perf_counter() - started) / len(customers) * 1e3
                print(f"graph-filter: batch in chunks of 100 {batch:.2f} ms a customer, row_top one at a time {single:.2f} ms; "
                      f"row_top gave up on {given_up}; the same 20 items for {same} of {len(customers) - given_up}", flush=True)


if __name__ == "__main__":
    main()
