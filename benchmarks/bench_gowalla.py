"""Accuracy of the default pipeline on the public Gowalla split, beside the published table.

    python benchmarks/bench_gowalla.py [--data-dir ../shared/data/gowalla] [--algorithm NAME] [--param k=v ...]

Trains exactly what `make train` trains by default (the default algorithm with its
default hyper-parameters, or tuned/<algorithm>.json when that file exists), on
train.txt; scores every test user (all items ranked, train items excluded); prints
Recall@20, NDCG@20 and the fitting seconds, then the published table from the data
folder's README.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from threadpoolctl import threadpool_limits  # noqa: E402

from recommender.algorithms import DEFAULT_ALGORITHM, create_algorithm, parse_params  # noqa: E402
from recommender.evaluation import evaluate, load_lightgcn, split_matrices  # noqa: E402


def published_table(readme: Path) -> list[str]:
    """The README's results table, as its markdown lines."""
    lines = readme.read_text(encoding="utf-8").splitlines() if readme.exists() else []
    start = next((i for i, line in enumerate(lines) if line.startswith("## Published results")), None)
    if start is None:
        return []
    return [line for line in lines[start + 1 :] if line.startswith("|")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR", ROOT.parent / "shared" / "data" / "gowalla")))
    parser.add_argument("--algorithm", default=DEFAULT_ALGORITHM)
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if not (args.data_dir / "train.txt").exists():
        print(f"no Gowalla data in {args.data_dir} (set DATA_DIR=...)", file=sys.stderr)
        return 2
    params: dict = {}
    tuned = ROOT / "tuned" / f"{args.algorithm}.json"
    if tuned.exists():
        params.update(json.loads(tuned.read_text()).get("params", {}))
        print(f"using tuned parameters from {tuned}", file=sys.stderr)
    params.update(parse_params(args.algorithm, args.param))
    train, test = split_matrices(*load_lightgcn(args.data_dir / "train.txt", args.data_dir / "test.txt"))
    with threadpool_limits(args.threads, "blas"):
        model = create_algorithm(args.algorithm, params)
        started = time.perf_counter()
        model.fit(train)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        metrics = evaluate(model, train, test, (20,))
        score_seconds = time.perf_counter() - started
    print(f"Gowalla ({int(metrics['customers'])} test users, {train.shape[1]} items), {args.threads} threads")
    chosen = "".join(f", chose {name} {value}" for name, value in model.fitted_settings().items())
    print(f"| this project: {args.algorithm} | {metrics['recall@20']:.4f} / {metrics['ndcg@20']:.4f} | fit {fit_seconds:.1f} s{chosen} (scoring all test users {score_seconds:.1f} s) |")
    print()
    print("\n".join(published_table(args.data_dir / "README.md")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
