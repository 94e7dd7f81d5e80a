"""A/B of two checkouts' granian servers on the after-purchase mix, both up, rounds alternating.

    python benchmarks/after_purchase_ab.py OLD_CHECKOUT NEW_CHECKOUT [--rounds 6] [--seconds 10]

`make bench-serve` compares two servers of one checkout; this compares two checkouts of
the production server on what a live answer changes: the plain recommendations and the
after-purchase mix (10% of requests for customers with a purchase posted since the model),
from this checkout's `benchmarks/bench_serving.py` (its model, customers, Lua scripts and
wrk runs). Both servers share one event store with the mix's purchases posted once, so
they answer the same requests; the order alternates each round (old, new, then new, old),
because the machine's speed drifts between minutes. Prints each round, then the medians.

For example: git worktree add /tmp/old <commit>, and compare /tmp/old with this checkout.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import bench_serving  # noqa: E402
import numpy as np  # noqa: E402

from serving.production import spawn  # noqa: E402

MEASURED = ("recommendations", "after-purchase mix")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workdir", type=Path, default=ROOT / "out" / "bench-serving", help="the benchmark's model folder")
    args = parser.parse_args()
    wrk = bench_serving.find_wrk()
    if wrk is None:
        raise SystemExit("wrk is needed (apt-get install wrk)")
    model, customers = bench_serving.prepare_model(args.workdir)
    shuffled = random.Random(42).sample(customers, len(customers))
    purchased, plain = shuffled[: len(customers) // 10], shuffled[len(customers) // 10 :]
    scratch = Path(tempfile.mkdtemp(prefix="after-purchase-ab-"))
    options = argparse.Namespace(workdir=scratch, duration=args.seconds, connections=args.connections)
    servers, runs = {}, {}
    try:
        for name, checkout in (("old", args.old.resolve()), ("new", args.new.resolve())):
            port = bench_serving.free_port()
            settings = {
                "RECOMMENDER_BIND": f"127.0.0.1:{port}", "RECOMMENDER_WORKERS": "2", "RECOMMENDER_THREADS": "1",
                "RECOMMENDER_MODEL_PATH": str(model), "RECOMMENDER_EVENTS_DB": str(scratch / "events.sqlite3"),
                "RECOMMENDER_LOG_LEVEL": "warning", "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix=f"metrics-{name}-", dir=scratch),
            }
            servers[name] = spawn(settings, server="granian", log_path=scratch / f"{name}.log", root=checkout)
            runs[name] = bench_serving._measurements(name, port, servers[name].pid, wrk, options, plain, purchased)
            if name == "old":
                bench_serving.post_purchases(port, purchased, [str(i) for i in np.load(model / "item_ids.npy", mmap_mode="r")])
        for name in servers:
            runs[name]["after-purchase mix"]()  # warm-up: page the model in, fill the live answers' caches
        results = {name: [] for name in servers}
        for round_number in range(args.rounds):
            for name in ("old", "new") if round_number % 2 == 0 else ("new", "old"):
                measured = {endpoint: runs[name][endpoint]() for endpoint in MEASURED}
                results[name].append(measured)
                print(name, "  ".join(f"{e}: {m['rps']:.0f} req/s, p99 {m['p99_ms']:.1f} ms, {m['cpu_us']:.0f} µs server CPU"
                                      for e, m in measured.items()), flush=True)
    finally:
        for server in servers.values():
            server.terminate()
            server.wait(timeout=30)
    print()
    for name, checkout in (("old", args.old), ("new", args.new)):
        for endpoint in MEASURED:
            rounds = [r[endpoint] for r in results[name]]
            each = ", ".join(f"{r['p99_ms']:.1f}" for r in rounds)
            print(f"{name} ({checkout}) {endpoint}: median {statistics.median(r['rps'] for r in rounds):.0f} req/s, "
                  f"p99 {statistics.median(r['p99_ms'] for r in rounds):.1f} ms (rounds: {each}), "
                  f"server CPU {statistics.median(r['cpu_us'] for r in rounds):.0f} µs per request")


if __name__ == "__main__":
    sys.exit(main())
