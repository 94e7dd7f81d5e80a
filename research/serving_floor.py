"""How close to the ceiling can a recommendation get on this HTTP stack? (issue 20: 80%)

    python -m research.serving_floor [--model out/bench-serving/models/current] [--rounds 3] [--seconds 8]

Starts the production server (granian, 2 workers x 1 thread, as ``make bench-serve``) on
the model, reads the real answers of 2,000 known customers (``?n=10``, with reasons) and
its ``/health`` body, then starts :mod:`research.serving_floor_app` under granian with the
same workers: a WSGI app that only looks the stored body up in a dict. wrk drives both with
``make bench-serve``'s Lua scripts, 16 connections, rounds interleaved (real health, real
recommendations, floor health, floor recommendations). The floor's recommendations / health
ratio is the most any answer path in Python can reach here: what the HTTP server charges for
a 2 kB body and a request the Lua script varies, with no Python work at all.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from research.common import parser, run_log

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_serving as bench  # noqa: E402


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("--model", type=Path, default=ROOT / "out/bench-serving/models/current")
    cli.add_argument("--rounds", type=int, default=3)
    cli.add_argument("--seconds", type=int, default=8)
    cli.add_argument("--connections", type=int, default=16)
    cli.add_argument("--customers", type=int, default=2000)
    args = cli.parse_args()
    log = run_log(__file__)
    wrk = bench.find_wrk()
    if wrk is None:
        sys.exit("error: wrk is needed (apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="serving-floor-"))
    from recommender.artifacts import load_model

    customers = [str(c) for c in load_model(args.model).customers.ids[: args.customers]]
    ports = {"real": bench.free_port(), "floor": bench.free_port()}
    servers = {"real": bench.start_server(args.model, work, ports["real"], 2, 1)}
    try:
        connection = http.client.HTTPConnection("127.0.0.1", ports["real"], timeout=10)
        stored = {"health": _get(connection, "/health"), "paths": {}}
        for customer in customers:
            path = f"/v1/customers/{customer}/recommendations"
            stored["paths"][path] = _get(connection, path + "?n=10")
        sizes = sorted(len(body) for body in stored["paths"].values())
        (work / "bodies.json").write_text(json.dumps(stored), encoding="utf-8")
        servers["floor"] = subprocess.Popen(
            [str(Path(sys.executable).parent / "granian"), "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(ports["floor"]),
             "--workers", "2", "--blocking-threads", "1", "--no-ws", "--log-level", "warning", "research.serving_floor_app:app"],
            cwd=ROOT, env={**os.environ, "FLOOR_BODIES": str(work / "bodies.json")}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(ports["floor"])
        scripts = {}
        for name, lua_path in (("health", bench.HEALTH_PATH), ("recommendations", bench.RECOMMENDATIONS_PATH)):
            scripts[name] = work / f"{name}.lua"
            scripts[name].write_text(bench.LUA % (",".join(f'"{c}"' for c in customers), 1, lua_path), encoding="utf-8")
        runs: dict[tuple[str, str], list[dict]] = {}
        for round_number in range(args.rounds):
            for server in ("real", "floor"):
                for name in ("health", "recommendations"):
                    url = f"http://127.0.0.1:{ports[server]}/"
                    script = scripts[name]
                    run = bench.with_server_cpu(servers[server].pid, lambda url=url, script=script: bench.run_wrk(wrk, url, args.seconds, args.connections, script), args.seconds)
                    result = run()
                    runs.setdefault((server, name), []).append(result)
                    log(f"round {round_number + 1} {server:5s} {name:15s} {result['rps']:9.0f} req/s  p99 {result['p99_ms']:6.2f} ms  "
                        f"server CPU {result['cpu_us']:5.0f} µs/request  non-2xx {result['errors']}")
        log(f"answer bodies: median {sizes[len(sizes) // 2]} bytes (min {sizes[0]}, max {sizes[-1]}); {args.rounds} rounds of {args.seconds} s, "
            f"{args.connections} connections, model {args.model.resolve().name}")
        for server in ("real", "floor"):
            ratios = sorted(r["rps"] / h["rps"] for r, h in zip(runs[(server, "recommendations")], runs[(server, "health")]))
            health, answers = bench._median_run(runs[(server, "health")]), bench._median_run(runs[(server, "recommendations")])
            log(f"{server}: health {health['rps']:.0f} req/s ({health['cpu_us']:.0f} µs CPU), recommendations {answers['rps']:.0f} req/s "
                f"({answers['cpu_us']:.0f} µs CPU); recommendations / health, median of rounds: {ratios[len(ratios) // 2]:.0%}")
    finally:
        for process in servers.values():
            process.terminate()
        for process in servers.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)  # the stored bodies, the event store, the scripts


def _get(connection: http.client.HTTPConnection, path: str) -> str:
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read().decode()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status} {body[:200]}")
    return body


def _wait(port: int, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/health")
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the floor app did not answer on port {port} within {seconds:.0f} s")


if __name__ == "__main__":
    main()
