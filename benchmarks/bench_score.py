"""Benchmark: batch top-N for every Gowalla customer against the hardware floor.

    python benchmarks/bench_score.py [--data-dir ../shared/data/gowalla] [--threads N]

Converts the LightGCN ``train.txt`` to CSV and trains a 128-factor ALS model once
(both reused from ``--work-dir`` when present), then times in one process:

* floor    a bare ``U @ V.T`` plus ``np.argpartition`` top-k, chunk by chunk, with
           BLAS on every core (the hardware floor: no exclusion, no sorting, no output);
* product  the bare matrix product alone (what scoring every item cannot go below; the
           norm-pruned search of ``recommender.algorithms.inner_product_search`` skips
           part of the product for most customers, exactly, so it can);
* score    the real path, ``training.batch.score_all`` writing CSV (or --format).

Each figure is the best of ``--repeat`` runs (other people's jobs share the
machine). Results print as a table and are saved to ``bench_score.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from recommender.artifacts import load_model, read_manifest  # noqa: E402
from training.batch import score_all  # noqa: E402
from training.cli import main as cli  # noqa: E402

FLOOR_CHUNK_ROWS = 1024  # big enough for multi-threaded BLAS to reach full speed


def prepared_model(data_dir: Path, work_dir: Path, factors: int, threads: int) -> Path:
    """The benchmark model folder, trained once (seeded) and reused afterwards."""
    models = work_dir / "models"
    current = models / "current"
    if current.exists() and read_manifest(current)["params"].get("factors") == factors:
        return current
    purchases = work_dir / "gowalla-train.csv"
    if not purchases.exists():
        train_txt = data_dir / "train.txt"
        if not train_txt.exists():
            sys.exit(f"error: {train_txt} not found; set DATA_DIR to the Gowalla folder (LightGCN split)")
        cli(["--quiet", "convert-lightgcn", str(train_txt), "--out", str(purchases)])
    code = cli(["--quiet", "--threads", str(threads), "train", "--data", str(purchases), "--algorithm", "als",
                "--param", f"factors={factors}", "--param", "random_state=42", "--models-dir", str(models), "--promote"])
    if code:
        sys.exit(f"error: training the benchmark model failed (exit {code})")
    return current


def floor_run(customers: np.ndarray, items: np.ndarray, n: int, with_top_k: bool):
    """The bare loop: chunked product (and argpartition top-k), nothing else."""
    items_t = np.ascontiguousarray(items.T)

    def run():
        for start in range(0, len(customers), FLOOR_CHUNK_ROWS):
            scores = customers[start : start + FLOOR_CHUNK_ROWS] @ items_t
            if with_top_k:
                np.argpartition(scores, -n, axis=1)[:, -n:]

    return run


def best_times(repeat: int, runs: dict, threads: int) -> dict[str, float]:
    """Best wall time of each run; rounds interleave so a burst of load hits all alike."""
    times = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            with threadpool_limits(threads, "blas"):
                started = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - started)
    return {name: min(values) for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR", ROOT.parent / "shared/data/gowalla")))
    parser.add_argument("--work-dir", type=Path, default=ROOT / "out/bench")
    parser.add_argument("--factors", type=int, default=128)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--format", choices=("csv", "parquet", "jsonl"), default="csv")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk-rows", type=int, help="override the scoring chunk (for tuning)")
    args = parser.parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)

    model = load_model(prepared_model(args.data_dir, args.work_dir, args.factors, args.threads), mmap=False)
    customer_vectors = np.ascontiguousarray(model.algorithm.customer_factors_, dtype=np.float32)
    items = np.ascontiguousarray(model.algorithm.item_factors_, dtype=np.float32)
    out = args.work_dir / f"scores.{args.format}"
    manifests = []

    def score():
        manifests.append(score_all(model, out, n=args.n, threads=args.threads, chunk_rows=args.chunk_rows))

    score()  # warm up: page in the model, start the thread pool once
    best = best_times(args.repeat, {
        "floor": floor_run(customer_vectors, items, args.n, with_top_k=True),
        "product": floor_run(customer_vectors, items, args.n, with_top_k=False),
        "score": score,
    }, args.threads)
    results = {
        "customers": len(model.customers),
        "items": len(model.items),
        "factors": args.factors,
        "n": args.n,
        "threads": args.threads,
        "format": args.format,
        "floor_seconds": round(best["floor"], 3),
        "product_seconds": round(best["product"], 3),
        "score_seconds": round(best["score"], 3),
        "rows": manifests[-1]["rows"],
        "chunk_rows": manifests[-1]["chunk_rows"],
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    results["ratio_to_floor"] = results["score_seconds"] / results["floor_seconds"]
    results["ratio_to_product"] = results["score_seconds"] / results["product_seconds"]
    (args.work_dir / "bench_score.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"{results['customers']} customers x {results['items']} items, {args.factors} factors, top-{args.n}, "
          f"{args.threads} threads, best of {args.repeat}")
    print(f"  floor (product + argpartition)   {results['floor_seconds']:7.2f} s")
    print(f"  bare product alone               {results['product_seconds']:7.2f} s")
    print(f"  recommender score -> {args.format:<8}     {results['score_seconds']:7.2f} s   "
          f"{results['customers'] / results['score_seconds']:,.0f} customers/s")
    print(f"  ratio to floor                   {results['ratio_to_floor']:7.2f}x   (goal <= 1.3x, <= 3 s)")
    print(f"  ratio to bare product            {results['ratio_to_product']:7.2f}x")
    print(f"  load average during the run      {results['load_average_1min']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
