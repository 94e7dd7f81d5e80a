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

from recommender.algorithms import create_algorithm, parse_params  # noqa: E402
from recommender.evaluation import evaluate, load_lightgcn, split_matrices  # noqa: E402
from recommender.selection import AUTO, choose_for_log  # noqa: E402


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
    parser.add_argument("--algorithm", default=AUTO, help="default: auto, the automatic choice (on train.txt only), as `recommender train` does")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if not (args.data_dir / "train.txt").exists():
        print(f"no Gowalla data in {args.data_dir} (set DATA_DIR=...)", file=sys.stderr)
        return 2
    params: dict = {}
    tuned = ROOT / "tuned" / f"{args.algorithm}.json"
    if args.algorithm == AUTO and args.param:
        parser.error("--param sets one algorithm's hyper-parameters; name the algorithm")
    if tuned.exists() and args.algorithm != AUTO:
        params.update(json.loads(tuned.read_text()).get("params", {}))
        print(f"using tuned parameters from {tuned}", file=sys.stderr)
    train_log, test_log = load_lightgcn(args.data_dir / "train.txt", args.data_dir / "test.txt")
    train, test = split_matrices(train_log, test_log)
    with threadpool_limits(args.threads, "blas"):
        choice_seconds, algorithm, start_state = 0.0, args.algorithm, {}
        if algorithm == AUTO:
            started = time.perf_counter()
            choice = choose_for_log(train_log, threads=args.threads)
            choice_seconds = time.perf_counter() - started
            algorithm, params, start_state = choice.algorithm, choice.params, choice.start_state
            print(f"chose {algorithm} {params} in {choice_seconds:.1f} s (budget {choice.budget_seconds:.0f} s): {choice.reason}", file=sys.stderr)
        else:
            params.update(parse_params(algorithm, args.param))
        model = create_algorithm(algorithm, params)
        model.start_from(start_state)  # as `recommender train` does: the winning trial's basis, if any
        started = time.perf_counter()
        model.fit(train)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        metrics = evaluate(model, train, test, (20,))
        score_seconds = time.perf_counter() - started
    print(f"Gowalla ({int(metrics['customers'])} test users, {train.shape[1]} items), {args.threads} threads")
    chosen = "".join(f", chose {name} {value}" for name, value in model.fitted_settings().items())
    spent = f"choice {choice_seconds:.1f} s + fit {fit_seconds:.1f} s" if args.algorithm == AUTO else f"fit {fit_seconds:.1f} s"
    if model.warm_started_:
        spent += " (the fit started from the winning trial's basis)"
    print(f"| this project: {args.algorithm} ({algorithm}) | {metrics['recall@20']:.4f} / {metrics['ndcg@20']:.4f} | {spent}{chosen} (scoring all test users {score_seconds:.1f} s) |")
    print()
    print("\n".join(published_table(args.data_dir / "README.md")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
