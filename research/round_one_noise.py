"""How far round one's leader is ahead of each other candidate, in paired standard errors.

    python -m research.round_one_noise [demo-sparse,online-retail,...]

For each store of benchmarks/bench_stores.py: the choice's validation split, every
candidate's defaults, and per candidate the leader's NDCG@20 minus its own, with the paired
standard error over the validation customers. It tells whether a rule that stops the search
(or drops a candidate) once the leader is ahead by more than the noise would keep the verdicts
the full search reaches (docs/benchmarks.md, issue 17, third pass).
"""

import sys

import numpy as np

from benchmarks.bench_stores import DEMO_SHAPES, STORES, demo, gowalla, online_retail
from recommender.selection import Candidate, choose, validation_split


def main(stores: list[str]) -> None:
    for name in stores:
        logs = gowalla() if name == "gowalla" else online_retail() if name == "online-retail" else demo(DEMO_SHAPES[name])
        if logs is None:
            print(f"{name}: no data")
            continue
        split = validation_split(logs[0])
        pool = [Candidate(algorithm, [{}]) for algorithm in ("graph-filter", "als", "item-knn-bm25")]
        choice = choose(split.fit, split.targets, budget_seconds=3600, pool=pool, threads=2, stop_early=False)
        leader = max(choice.trials, key=lambda t: t.metrics["ndcg@20"])
        for trial in choice.trials:
            difference = leader.per_customer - trial.per_customer
            error = difference.std(ddof=1) / np.sqrt(len(difference))
            print(f"{name}: {trial.algorithm} {trial.metrics['ndcg@20']:.4f}, behind the leader by {difference.mean():.4f} "
                  f"± {error:.4f} s.e. ({difference.mean() / error if error else 0:.1f} s.e., {len(difference)} customers)")


if __name__ == "__main__":
    main(sys.argv[1].split(",") if len(sys.argv) > 1 else [s for s in STORES if s != "gowalla"])
