"""A/B of the serving path: two checkouts, alternating runs, wrk throughput and server CPU.

    python benchmarks/serving_ab.py OLD_CHECKOUT NEW_CHECKOUT [--runs 2] [--rounds 3]

A single `make bench-serve` run cannot tell 76% from 82% on a shared 2-core machine, so
this alternates whole server runs of the two checkouts (old, new, old, new, ...). Each run
starts gunicorn from that checkout with the benchmark's model and Lua scripts
(benchmarks/bench_serving.py, which must exist in both). It then measures rounds of
/health and recommendations, recording for each endpoint:
- requests/s;
- the CPU seconds per request that gunicorn and its workers used (from /proc);
- the same for wrk.
It prints every round, then the medians per checkout. The server's CPU time is read
with this checkout's ``server_cpu_seconds``, whichever checkout is measured (an old one
may predate it).

For example, git worktree add /tmp/old <commit>, and then compare /tmp/old with this checkout.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench_module(checkout: Path):
    """``benchmarks/bench_serving.py`` of ``checkout``, loaded from its file."""
    spec = importlib.util.spec_from_file_location(f"bench_serving_{abs(hash(checkout))}", checkout / "benchmarks" / "bench_serving.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


server_cpu_seconds = _bench_module(ROOT).server_cpu_seconds


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def one_run(checkout: Path, workdir: Path, rounds: int, seconds: int) -> list[dict]:
    bench = _bench_module(checkout)
    model, customers = bench.prepare_model(workdir)
    port = bench.free_port()
    server = bench.start_server(model, Path(tempfile.mkdtemp()), port, 2, 1)
    try:
        wrk = bench.find_wrk()
        if wrk is None:
            raise SystemExit("wrk is needed (apt-get install wrk)")
        quoted = ",".join(f'"{c}"' for c in customers)
        scripts = {}
        for name, path in (("health", bench.HEALTH_PATH), ("recommendations", bench.RECOMMENDATIONS_PATH)):
            scripts[name] = Path(tempfile.mkdtemp()) / f"{name}.lua"
            scripts[name].write_text(bench.LUA % (quoted, 42, path))
        base = f"http://127.0.0.1:{port}/"
        bench.run_wrk(wrk, base, 5, 16, scripts["recommendations"])  # warm-up
        results = []
        for _ in range(rounds):
            measured = {}
            for name, script in scripts.items():
                server_before, wrk_before = server_cpu_seconds(server.pid), _children_cpu()
                run = bench.run_wrk(wrk, base, seconds, 16, script)
                requests = run["rps"] * seconds
                measured[name] = {
                    "rps": run["rps"],
                    "server_us": (server_cpu_seconds(server.pid) - server_before) / requests * 1e6,
                    "wrk_us": (_children_cpu() - wrk_before) / requests * 1e6,
                }
            results.append(measured)
            print(
                f"{checkout}: health {measured['health']['rps']:.0f} req/s ({measured['health']['server_us']:.0f} µs server CPU), "
                f"recommendations {measured['recommendations']['rps']:.0f} req/s ({measured['recommendations']['server_us']:.0f} µs), "
                f"ratio {measured['recommendations']['rps'] / measured['health']['rps']:.0%}",
                flush=True,
            )
        return results
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--runs", type=int, default=2, help="server runs per checkout, alternating")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=ROOT / "out" / "bench-serving", help="the benchmark's model folder")
    args = parser.parse_args()
    rounds: dict[Path, list[dict]] = {args.old: [], args.new: []}
    for _ in range(args.runs):
        for checkout in (args.old, args.new):
            rounds[checkout] += one_run(checkout.resolve(), args.workdir, args.rounds, args.seconds)
    print()
    for checkout, measured in rounds.items():
        ratios = [r["recommendations"]["rps"] / r["health"]["rps"] for r in measured]
        med = {k: statistics.median(r[k]["rps"] for r in measured) for k in ("health", "recommendations")}
        cpu = {k: statistics.median(r[k]["server_us"] for r in measured) for k in ("health", "recommendations")}
        print(
            f"{checkout}: median health {med['health']:.0f} req/s, recommendations {med['recommendations']:.0f} req/s, "
            f"ratio {statistics.median(ratios):.0%} (rounds: {', '.join(f'{r:.0%}' for r in ratios)}); "
            f"server CPU per request {cpu['health']:.0f} / {cpu['recommendations']:.0f} µs"
        )


if __name__ == "__main__":
    sys.exit(main())
