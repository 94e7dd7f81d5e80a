"""Serving benchmark: gunicorn on loopback with a Gowalla-sized ALS model, driven by wrk.

    python benchmarks/bench_serving.py [--duration 10] [--rounds 3] [--connections 16]

One run measures, on the same server, requests/s and p50/p99 latency of
1. ``GET /health`` (the framework's ceiling: routing, metrics, JSON, nothing else), and
2. ``GET /v1/customers/<random known customer>/recommendations?n=10``,
in interleaved rounds, and prints the medians and their ratio, plus the server's own CPU
time per request of each (gunicorn and its workers, from /proc: steadier than requests/s
on a shared machine); then it posts a purchase
and checks that the customer's very next answer no longer lists the bought item. The
model (about 30k customers, 41k items, ALS with 128 factors, top lists and reasons
precomputed by ``recommender train``) is built once under ``--workdir`` from the
Gowalla split in ../shared/data/gowalla, or from synthetic demo data when that is absent.

wrk comes from the Debian package (installed with apt-get when missing and
possible); without it a Python load generator (threads, keep-alive) stands in,
which is slower than the server and so understates throughput.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOWALLA = Path(os.environ.get("DATA_DIR", ROOT.parent / "shared" / "data" / "gowalla")) / "train.txt"
GUNICORN_CONFIG = ROOT / "serving" / "gunicorn.conf.py"


def prepare_model(workdir: Path) -> tuple[Path, list[str]]:
    """Train (once) and return models/current plus the known customer ids."""
    models = workdir / "models"
    purchases = workdir / "purchases.csv"
    if not purchases.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        if GOWALLA.exists():
            print(f"converting {GOWALLA} to {purchases}", file=sys.stderr)
            with open(GOWALLA) as source, open(purchases, "w") as target:
                target.write("customer_id,item_id\n")
                for line in source:
                    user, *items = line.split()
                    target.writelines(f"u{user},i{item}\n" for item in items)
        else:
            cli = [sys.executable, "-m", "training", "-q", "demo-data", "--out", str(workdir / "demo")]
            subprocess.run(cli + ["--customers", "30000", "--items", "41000", "--purchases", "1000000"], check=True)
            shutil.copy(workdir / "demo" / "purchases.csv", purchases)
    if not (models / "current").exists():
        print("training ALS (128 factors, 5 iterations)", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "training", "-q", "train", "--data", str(purchases), "--algorithm", "als",
             "--param", "factors=128", "--param", "iterations=5", "--models-dir", str(models), "--promote"],
            check=True,
        )
    import numpy as np

    customers = np.load(models / "current" / "customer_ids.npy", mmap_mode="r")
    return models / "current", [str(c) for c in customers]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: Path, workdir: Path, port: int, workers: int, threads: int) -> subprocess.Popen:
    environment = {
        **os.environ,
        "RECOMMENDER_BIND": f"127.0.0.1:{port}",
        "RECOMMENDER_WORKERS": str(workers),
        "RECOMMENDER_THREADS": str(threads),
        "RECOMMENDER_MODEL_PATH": str(model),
        "RECOMMENDER_EVENTS_DB": str(workdir / "events.sqlite3"),
        "RECOMMENDER_LOG_LEVEL": "warning",
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="bench-metrics-"),
    }
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG)], env=environment, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/ready")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not become ready within 60 s")


def find_wrk() -> str | None:
    """wrk's path, installing the Debian package when we can; None to use the Python driver."""
    if shutil.which("wrk"):
        return shutil.which("wrk")
    if shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return shutil.which("wrk")


# The same Lua request() drives both endpoints: generating a request in Lua costs wrk
# CPU on the machine the server shares, so a scripted run against a static /health
# would charge that cost to the recommendations only. /health ignores the query string.
LUA = """
local customers = {%s}
math.randomseed(%d)
request = function()
  return wrk.format("GET", %s)
end
"""
RECOMMENDATIONS_PATH = '"/v1/customers/" .. customers[math.random(#customers)] .. "/recommendations?n=10"'
HEALTH_PATH = '"/health?customer=" .. customers[math.random(#customers)]'


def run_wrk(wrk: str, url: str, seconds: int, connections: int, script: Path | None) -> dict:
    command = [wrk, "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", url]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", output, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": _to_ms(latency["50"]),
        "p99_ms": _to_ms(latency["99"]),
        "errors": int(errors.group(1)) if errors else 0,
    }


def _to_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def run_python_driver(port: int, paths, seconds: int, connections: int) -> dict:
    """Closed-loop load with keep-alive connections, one thread each (a weaker stand-in for wrk)."""
    latencies, errors, stop = [], [0], time.monotonic() + seconds

    def worker():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        local = []
        while time.monotonic() < stop:
            started = time.perf_counter()
            connection.request("GET", paths())
            response = connection.getresponse()
            response.read()
            local.append(time.perf_counter() - started)
            if response.status != 200:
                errors[0] += 1
        latencies.extend(local)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    return {
        "rps": len(latencies) / seconds,
        "p50_ms": latencies[len(latencies) // 2] * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
        "errors": errors[0],
    }


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (gunicorn's master) and its
    children (the workers), from /proc. Per request, this is the server's own cost: unlike
    requests/s, it does not move when wrk or a neighbour takes the CPU for a moment."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    ticks = 0
    for process in [pid, *map(int, children)]:
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue  # a worker that has just exited
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def with_server_cpu(pid: int, run, seconds: int):
    """``run`` (a load generator call returning a dict with ``rps``), plus ``cpu_us``: the
    server's CPU microseconds per request answered."""

    def measured() -> dict:
        before = server_cpu_seconds(pid)
        result = run()
        answered = max(result["rps"] * seconds, 1.0)
        return {**result, "cpu_us": (server_cpu_seconds(pid) - before) / answered * 1e6}

    return measured


def _median_run(runs: list[dict]) -> dict:
    """Per figure, the median over the rounds."""
    return {key: sorted(run[key] for run in runs)[len(runs) // 2] for key in runs[0]}


def check_event_reflected(port: int, customer: str) -> dict:
    """Post a purchase of the customer's top item, then ask again at once: it must be gone."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def call(method: str, path: str, body: dict | None = None) -> dict:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = connection.getresponse()
        payload = json.loads(response.read())
        if response.status >= 300:
            raise RuntimeError(f"{method} {path} answered {response.status}: {payload}")
        return payload

    path = f"/v1/customers/{customer}/recommendations?n=10"
    bought = call("GET", path)["items"][0]["item_id"]
    call("POST", "/v1/events", {"customer_id": customer, "item_id": bought, "event_type": "purchase"})
    started = time.perf_counter()
    after = call("GET", path)
    seconds = time.perf_counter() - started
    return {"bought": bought, "gone": bought not in [item["item_id"] for item in after["items"]], "ms": seconds * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per endpoint per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (health, recommendations) to take medians over")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker")
    parser.add_argument("--workdir", type=Path, default=ROOT / "out" / "bench-serving")
    parser.add_argument("--python-driver", action="store_true", help="use the Python load generator even if wrk exists")
    args = parser.parse_args()

    model, customers = prepare_model(args.workdir)
    port = free_port()
    for stale in args.workdir.glob("events.sqlite3*"):
        stale.unlink()  # every run starts with no stored events: all customers answer from the cache
    server = start_server(model, args.workdir, port, args.workers, args.threads)
    try:
        wrk = None if args.python_driver else find_wrk()
        base = f"http://127.0.0.1:{port}"
        if wrk:
            quoted = ",".join(f'"{c}"' for c in customers)
            script = args.workdir / "random_customers.lua"
            script.write_text(LUA % (quoted, 42, RECOMMENDATIONS_PATH))
            health_script = args.workdir / "random_health.lua"
            health_script.write_text(LUA % (quoted, 42, HEALTH_PATH))
            run_wrk(wrk, base + "/health", 2, args.connections, None)  # warm-up: page in, fill caches
            run_wrk(wrk, base + "/", 3, args.connections, script)
            measure = {
                "health": lambda: run_wrk(wrk, base + "/", args.duration, args.connections, health_script),
                "recommendations": lambda: run_wrk(wrk, base + "/", args.duration, args.connections, script),
                "health (static)": lambda: run_wrk(wrk, base + "/health", args.duration, args.connections, None),
            }
            driver = "wrk"
        else:
            pick = random.Random(42).choice
            measure = {
                "health": lambda: run_python_driver(port, lambda: f"/health?customer={pick(customers)}", args.duration, args.connections),
                "recommendations": lambda: run_python_driver(
                    port, lambda: f"/v1/customers/{pick(customers)}/recommendations?n=10", args.duration, args.connections
                ),
            }
            driver = "python driver"
        measure = {name: with_server_cpu(server.pid, run, args.duration) for name, run in measure.items()}
        # Interleaved rounds: the machine's speed drifts by tens of percent from minute to
        # minute (shared cores), so each round's ratio compares neighbours in time.
        rounds = []
        for _ in range(args.rounds):
            rounds.append({name: run() for name, run in measure.items()})
        results = {name: _median_run([r[name] for r in rounds]) for name in measure}
        ratios = sorted(r["recommendations"]["rps"] / r["health"]["rps"] for r in rounds)
        static_ratios = sorted(r["recommendations"]["rps"] / r["health (static)"]["rps"] for r in rounds if "health (static)" in r)
        reflected = check_event_reflected(port, customers[0])
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(f"\nserving benchmark: {driver}, {args.connections} connections, {args.rounds} interleaved rounds of {args.duration}s each, "
          f"{args.workers} workers x {args.threads} threads, {os.cpu_count()} cores, model {model.resolve().name}")
    print(f"{'endpoint':<18}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}{'server CPU/req':>16}")
    for name, r in results.items():
        print(f"{name:<18}{r['rps']:>12.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}{r['errors']:>8}{r['cpu_us']:>13.0f} µs")
    ratio = ratios[len(ratios) // 2]
    p99 = results["recommendations"]["p99_ms"]
    print("(medians over the rounds; per-round ratios " + ", ".join(f"{r:.0%}" for r in ratios) + ")")
    print(f"recommendations / health throughput: {ratio:.0%} (goal >= 80%); recommendations p99 {p99:.1f} ms (goal <= 10 ms)")
    cost = results["health"]["cpu_us"] / results["recommendations"]["cpu_us"]
    print(f"server CPU per request, health / recommendations: {cost:.0%} (steadier than the throughput ratio on a shared machine)")
    if static_ratios:
        print("against a static /health (no client script, so wrk spends less CPU on that run): "
              f"{static_ratios[len(static_ratios) // 2]:.0%}")
    print(f"a purchase posted for {customers[0]} removed {reflected['bought']} from their very next answer: "
          f"{'yes' if reflected['gone'] else 'NO'} (that answer, scored live from the new history: {reflected['ms']:.1f} ms)")


if __name__ == "__main__":
    main()
