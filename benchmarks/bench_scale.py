"""Benchmark: train and score a 1M-customer, 200k-item, 20M-purchase store on one machine.

    python benchmarks/bench_scale.py [--work-dir out/scale] [--factors 64] [--iterations 5]

Runs each step as its own ``recommender`` process and records its wall time and
peak resident memory (from ``os.wait4``, the kernel's own account of the child):

1. demo-data   generate the store as Parquet (skipped when already there);
2. train       load + validate + index + ALS (implicit, ``--factors``, ``--iterations``);
3. score       top-20 for every customer, streamed to Parquet.

Each step is bounded by ``--step-timeout`` seconds. Results print as a table and are
saved to ``bench_scale.json``; nothing here needs memory that grows with
customers x items.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_step(name: str, argv: list[str], timeout: float, log) -> dict:
    """Run one CLI step; return its wall seconds, peak RSS (GiB) and exit status."""
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {' '.join(argv)}", file=log, flush=True)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "training", *argv], cwd=ROOT, stdout=log, stderr=log)
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            process.kill()
            pid, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.5)
    seconds = time.perf_counter() - started
    result = {
        "step": name,
        "seconds": round(seconds, 1),
        "peak_rss_gib": round(usage.ru_maxrss / 2**20, 2),  # ru_maxrss is in KiB on Linux
        "exit_code": os.waitstatus_to_exitcode(status),
        "timed_out": seconds > timeout,
    }
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {result}", file=log, flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=ROOT / "out/scale")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--purchases", type=int, default=20_000_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--step-timeout", type=float, default=3600)
    args = parser.parse_args(argv)
    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    common = ["--quiet", "--threads", str(args.threads)]
    steps = []
    with open(work / "bench_scale.log", "a") as log:
        if not (data / "purchases.parquet").exists():
            steps.append(run_step("demo-data", [*common, "demo-data", "--out", str(data), "--customers", str(args.customers),
                                                "--items", str(args.items), "--purchases", str(args.purchases), "--format", "parquet"],
                                  args.step_timeout, log))
        steps.append(run_step("train", [*common, "train", "--data", str(data / "purchases.parquet"), "--catalog", str(data / "catalog.parquet"),
                                        "--algorithm", "als", "--param", f"factors={args.factors}", "--param", f"iterations={args.iterations}",
                                        "--models-dir", str(work / "models"), "--promote"], args.step_timeout, log))
        if steps[-1]["exit_code"] == 0:
            steps.append(run_step("score", [*common, "score", "--model", str(work / "models/current"), "--n", "20",
                                            "--out", str(work / "scores.parquet")], args.step_timeout, log))
    results = {"customers": args.customers, "items": args.items, "purchases": args.purchases, "factors": args.factors,
               "iterations": args.iterations, "threads": args.threads, "steps": steps}
    (work / "bench_scale.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"{args.customers:,} customers x {args.items:,} items, {args.purchases:,} purchases; ALS {args.factors} factors, "
          f"{args.iterations} iterations, {args.threads} threads")
    for step in steps:
        flag = " (TIMED OUT)" if step["timed_out"] else ("" if step["exit_code"] == 0 else f" (exit {step['exit_code']})")
        print(f"  {step['step']:<10} {step['seconds']:8.1f} s   peak RSS {step['peak_rss_gib']:6.2f} GiB{flag}")
    return 0 if all(s["exit_code"] == 0 for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
