"""Does a blend of two candidates beat the best single one on validation? (issue 17)

    python -m research.blend_check {online-retail|demo-dense|demo-sparse}

Fits a few candidates on the automatic choice's validation split of the store's
training part (as benchmarks/bench_stores.py cuts it), then scores blends
(1-w)·A/rms(A) + w·B/rms(B) of every pair for w in 0.25, 0.5, 0.75; prints validation NDCG@20.
"""

from __future__ import annotations

import itertools
import sys

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.bench_stores import DEMO_SHAPES, demo, online_retail
from recommender.algorithms import create_algorithm
from recommender.evaluation.metrics import accuracy_at_k, hit_matrix
from recommender.ranking import top_k
from recommender.selection import validation_split

CANDIDATES = {
    "graph-filter": {},
    "gf-cf": {"co_buyer_exponent": 1.0, "popularity_exponent": 0.5, "normalise_parts": False, "sharpening": 0.0, "low_rank_weight": 0.1, "rank": 256},
    "als": {"regularization": 200.0, "alpha": 50.0},
    "item-knn-bm25": {"neighbours": 1000},
    "ease": None,
}


def main() -> None:
    store = sys.argv[1]
    train_log, _ = online_retail() if store == "online-retail" else demo(DEMO_SHAPES[store])
    split = validation_split(train_log)
    rows = np.flatnonzero(np.diff(split.targets.indptr) > 0)
    history, targets = split.fit[rows], split.targets[rows]
    scores = {}
    with threadpool_limits(1, "blas"):
        for name, params in CANDIDATES.items():
            algorithm = "graph-filter" if name == "gf-cf" else name
            if params is None:
                params = {"l2": 4 * split.fit.nnz / split.fit.shape[1]}
            model = create_algorithm(algorithm, params).fit(split.fit)
            s = model.scores(history, rows).astype(np.float64)
            s /= np.maximum(np.sqrt((s**2).mean(axis=1, keepdims=True)), 1e-12)
            scores[name] = s
    seen = np.repeat(np.arange(len(rows)), np.diff(history.indptr))

    def ndcg(s):
        s = s.copy()
        s[seen, history.indices] = -np.inf
        best, _ = top_k(s.astype(np.float32), 20)
        return accuracy_at_k(hit_matrix(best, targets), np.diff(targets.indptr), 20)["ndcg"]

    for name, s in scores.items():
        print(f"{name}: {ndcg(s):.4f}", flush=True)
    for a, b in itertools.combinations(scores, 2):
        print(f"{a} + {b}: " + ", ".join(f"w {w}: {ndcg((1 - w) * scores[a] + w * scores[b]):.4f}" for w in (0.25, 0.5, 0.75)), flush=True)


if __name__ == "__main__":
    main()
