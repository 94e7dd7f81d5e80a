"""Serving benchmark: the production server (granian) against gunicorn, on loopback with a
Gowalla-sized ALS model, driven by wrk.

    python benchmarks/bench_serving.py [--duration 10] [--rounds 5] [--connections 16]

Both servers run side by side (the same app, model and event store, on two ports) and
rounds interleave them, so a burst of load on this shared machine hits both alike. Per
server and round: ``GET /health`` (the ceiling: the HTTP server, metrics, JSON, nothing else);
recommendations for random known customers (``?n=10``); and an after-purchase mix, where
10% of the requests are for customers who have posted a purchase since the model (so
their answer comes from their new history: scored live, or remembered from their previous
request while nothing new happened, never from the precomputed top lists). It prints
requests/s, p50/p99 and the server's own CPU per request (from /proc: steadier than
requests/s on a shared machine), and how many of the mix's live answers were remembered
from the customer's previous request (Prometheus metrics). Then, on the idle server, 200
customers in turn post a purchase of their top item and ask again at once: the item must
be gone, and that first answer after a purchase (always scored live) is timed; then (with
wrk) 200 more the same way while wrk keeps the server busy with plain recommendations. The
production server's workers' resident memory after warm-up and at the end shows whether
they grow with requests (what recycling workers after N requests would guard against). It
ends with one line:

    recommendations X% of ceiling, p99 Y ms; after-purchase mix p99 Z ms; ceiling C req/s (other server D req/s)

The model (about 30k customers, 41k items, ALS with 128 factors, top lists and reasons
precomputed by ``recommender train``) is built once under ``--workdir`` from the
Gowalla split in ../shared/data/gowalla, or from synthetic demo data when that is absent.
``--model FOLDER`` serves a trained model folder instead (``make bench-serve
SERVE_MODEL=...``), e.g. the default graph-filter that ``make bench-live`` trains: the
after-purchase mix then scores the product's default live, where ALS folds in cheaply.
wrk comes from the Debian package (installed with apt-get when missing and possible);
without it a Python load generator (threads, keep-alive) stands in, which is slower than
the server and so understates throughput.
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
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOWALLA = Path(os.environ.get("DATA_DIR", ROOT.parent / "shared" / "data" / "gowalla")) / "train.txt"
sys.path.insert(0, str(ROOT))  # this checkout's serving package, for the launcher (stdlib only)
from serving.production import SERVERS, spawn  # noqa: E402

PURCHASED_SHARE = 0.1  # of the mix's requests: customers who have just posted a purchase
REFLECTED_CUSTOMERS = 200  # posted a purchase each after the rounds, then asked again at once


def prepare_model(workdir: Path, given: Path | None = None) -> tuple[Path, list[str]]:
    """Train (once) and return models/current plus the known customer ids; or ``given``, a
    trained model folder, and its customer ids."""
    if given is not None:
        if not (given / "manifest.json").exists():
            raise SystemExit(f"--model {given}: not a model folder (no manifest.json)")
        return given, _customer_ids(given)
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
    return models / "current", _customer_ids(models / "current")


def _customer_ids(model: Path) -> list[str]:
    import numpy as np

    return [str(c) for c in np.load(model / "customer_ids.npy", mmap_mode="r")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: Path, workdir: Path, port: int, workers: int, threads: int, server: str = SERVERS[0]) -> subprocess.Popen:
    """``server`` serving ``model`` with the event store in ``workdir``, ready for requests."""
    settings = {
        "RECOMMENDER_BIND": f"127.0.0.1:{port}",
        "RECOMMENDER_WORKERS": str(workers),
        "RECOMMENDER_THREADS": str(threads),
        "RECOMMENDER_MODEL_PATH": str(model),
        "RECOMMENDER_EVENTS_DB": str(workdir / "events.sqlite3"),
        "RECOMMENDER_LOG_LEVEL": "warning",
        # In the work folder, not /tmp: the server empties it at start, so runs leave nothing behind.
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / f"metrics-{server}"),
    }
    return spawn(settings, server=server, log_path=workdir / f"{server}.log", ready_seconds=60, root=ROOT)


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
# The after-purchase mix: a share of the requests for customers with a purchase posted since the model.
MIX_LUA = """
local customers = {%s}
local purchased = {%s}
math.randomseed(%d)
request = function()
  if math.random() < %f then
    return wrk.format("GET", "/v1/customers/" .. purchased[math.random(#purchased)] .. "/recommendations?n=10")
  end
  return wrk.format("GET", "/v1/customers/" .. customers[math.random(#customers)] .. "/recommendations?n=10")
end
"""


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


def answer_origins(port: int) -> dict[str, float]:
    """The server's recommendation lists so far by origin (top lists, scored, remembered),
    and how many answers it encoded and kept (``encoded``), all workers together, from its
    Prometheus metrics."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    found = re.findall(r'^recommender_answer_origins_total\{origin="(\w+)"\} (\S+)$', text, flags=re.MULTILINE)
    counts = {origin: float(count) for origin, count in found}
    encoded = re.search(r"^recommender_prepared_answers_encoded_total (\S+)$", text, flags=re.MULTILINE)
    counts["encoded"] = float(encoded.group(1)) if encoded else 0.0
    return counts


def check_events_reflected(port: int, customers: list[str]) -> dict:
    """For each customer in turn: post a purchase of their top item, then ask again at once.
    The item must be gone from that very next answer, which is scored live (nothing
    remembered can answer it): its times are the first page after a purchase."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def call(method: str, path: str, body: dict | None = None) -> dict:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = connection.getresponse()
        payload = json.loads(response.read())
        if response.status >= 300:
            raise RuntimeError(f"{method} {path} answered {response.status}: {payload}")
        return payload

    gone, milliseconds = 0, []
    for customer in customers:
        path = f"/v1/customers/{customer}/recommendations?n=10"
        bought = call("GET", path)["items"][0]["item_id"]
        call("POST", "/v1/events", {"customer_id": customer, "item_id": bought, "event_type": "purchase"})
        started = time.perf_counter()
        after = call("GET", path)
        milliseconds.append((time.perf_counter() - started) * 1e3)
        gone += bought not in [item["item_id"] for item in after["items"]]
    milliseconds.sort()
    return {"customers": len(customers), "gone": gone, "p50_ms": milliseconds[len(milliseconds) // 2],
            "p99_ms": milliseconds[min(len(milliseconds) - 1, int(len(milliseconds) * 0.99))]}


def check_events_reflected_under_load(port: int, customers: list[str], wrk: str, script: Path, connections: int) -> dict:
    """:func:`check_events_reflected` while wrk keeps the server busy with plain
    recommendations (``script``) on ``connections - 1`` connections: the first page after a
    purchase as a storefront meets it at full load."""
    load = subprocess.Popen([wrk, "-s", str(script), "-t", "1", "-c", str(max(connections - 1, 1)), "-d", "600s",
                             f"http://127.0.0.1:{port}/"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # the load under way first
        return check_events_reflected(port, customers)
    finally:
        load.terminate()
        load.wait(timeout=30)


def post_purchases(port: int, customers: list[str], items: list[str], seed: int = 7) -> None:
    """One purchase each (a random item) for ``customers``, in batches of 1,000 events."""
    rng = random.Random(seed)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for start in range(0, len(customers), 1000):
        events = [{"customer_id": c, "item_id": rng.choice(items), "event_type": "purchase"} for c in customers[start : start + 1000]]
        connection.request("POST", "/v1/events", json.dumps({"events": events}), {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        if response.status != 202:
            raise SystemExit(f"posting the mix's purchases failed: {response.status}")
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per endpoint per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds to take medians over")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="threads per worker")
    parser.add_argument("--workdir", type=Path, default=ROOT / "out" / "bench-serving")
    parser.add_argument("--model", type=Path, help="serve this trained model folder instead of the Gowalla-sized ALS built in --workdir")
    parser.add_argument("--servers", default=",".join(SERVERS), help="production server first, then the one to compare (default: %(default)s)")
    parser.add_argument("--python-driver", action="store_true", help="use the Python load generator even if wrk exists")
    args = parser.parse_args()
    servers = args.servers.split(",")

    model, customers = prepare_model(args.workdir, args.model)
    for stale in args.workdir.glob("events.sqlite3*"):
        stale.unlink()  # every run starts with no stored events: all customers answer from the cache
    shuffled = random.Random(42).sample(customers, len(customers))
    purchased, plain = shuffled[: len(customers) // 10], shuffled[len(customers) // 10 :]
    ports = {server: free_port() for server in servers}
    processes = {}
    try:
        for server in servers:
            processes[server] = start_server(model, args.workdir, ports[server], args.workers, args.threads, server)
        import numpy as np

        post_purchases(ports[servers[0]], purchased, [str(i) for i in np.load(model / "item_ids.npy", mmap_mode="r")])
        wrk = None if args.python_driver else find_wrk()
        measure = {server: _measurements(server, ports[server], processes[server].pid, wrk, args, plain, purchased) for server in servers}
        for server in servers:
            for run in measure[server].values():
                run()  # warm-up: page the model in, fill the caches
        # Interleaved rounds: the machine's speed drifts by tens of percent from minute to
        # minute (shared cores), so each figure is compared with its neighbours in time.
        rounds = {server: [] for server in servers}
        memory = {"after warm-up": workers_memory(processes[servers[0]].pid)}
        origins_before = answer_origins(ports[servers[0]])
        for _ in range(args.rounds):
            for server in servers:
                rounds[server].append({name: run() for name, run in measure[server].items()})
        origins_after = answer_origins(ports[servers[0]])
        origins = {origin: origins_after.get(origin, 0) - origins_before.get(origin, 0) for origin in origins_after}
        reflected = check_events_reflected(ports[servers[0]], plain[:REFLECTED_CUSTOMERS])
        loaded = None  # the Python driver cannot load the server while one client times its answers
        if wrk:
            loaded = check_events_reflected_under_load(ports[servers[0]], plain[REFLECTED_CUSTOMERS : 2 * REFLECTED_CUSTOMERS], wrk,
                                                       args.workdir / f"{servers[0]}-recommendations.lua", args.connections)
        memory["at the end"] = workers_memory(processes[servers[0]].pid)
    finally:
        for process in processes.values():
            process.terminate()
            process.wait(timeout=30)
    _report(args, servers, rounds, reflected, loaded, origins, model, "wrk" if wrk else "python driver", memory)


def _measurements(server: str, port: int, pid: int, wrk: str | None, args, plain: list[str], purchased: list[str]) -> dict:
    """Per endpoint, a function that measures one round against ``server`` (with its CPU per request)."""
    base = f"http://127.0.0.1:{port}/"
    if wrk:
        quoted, quoted_purchased = ",".join(f'"{c}"' for c in plain), ",".join(f'"{c}"' for c in purchased)
        scripts = {}
        for name, text in (
            ("health", LUA % (quoted, 42, HEALTH_PATH)),
            ("recommendations", LUA % (quoted, 42, RECOMMENDATIONS_PATH)),
            ("after-purchase mix", MIX_LUA % (quoted, quoted_purchased, 42, PURCHASED_SHARE)),
        ):
            scripts[name] = args.workdir / f"{server}-{name.replace(' ', '-')}.lua"
            scripts[name].write_text(text)
        runs = {name: (lambda script=script: run_wrk(wrk, base, args.duration, args.connections, script)) for name, script in scripts.items()}
    else:
        pick = random.Random(42).choice

        def mix_path() -> str:
            return f"/v1/customers/{pick(purchased) if random.random() < PURCHASED_SHARE else pick(plain)}/recommendations?n=10"

        runs = {
            "health": lambda: run_python_driver(port, lambda: f"/health?customer={pick(plain)}", args.duration, args.connections),
            "recommendations": lambda: run_python_driver(port, lambda: f"/v1/customers/{pick(plain)}/recommendations?n=10", args.duration, args.connections),
            "after-purchase mix": lambda: run_python_driver(port, mix_path, args.duration, args.connections),
        }
    # ``pid`` is the server's master (the launcher execs gunicorn, and runs granian in-process).
    return {name: with_server_cpu(pid, run, args.duration) for name, run in runs.items()}


def workers_memory(pid: int) -> list[float]:
    """Resident memory (MB) of each worker process of the server whose master is ``pid``: what
    recycling workers after N requests would guard against, if it grew."""
    sizes = []
    for child in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split():
        try:
            status = Path(f"/proc/{child}/status").read_text()
        except FileNotFoundError:
            continue
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if found:
            sizes.append(int(found.group(1)) / 1024)
    return sorted(sizes)


def _report(args, servers: list[str], rounds: dict, reflected: dict, loaded: dict | None, origins: dict, model: Path, driver: str,
            memory: dict[str, list[float]]) -> None:
    print(f"\nserving benchmark: {driver}, {args.connections} connections, {args.rounds} interleaved rounds of {args.duration}s "
          f"per endpoint and server, {args.workers} workers x {args.threads} threads, {os.cpu_count()} cores, model {model.resolve().name}")
    print(f"{'server':<10}{'endpoint':<20}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}{'server CPU/req':>16}")
    results = {}
    for server in servers:
        results[server] = {name: _median_run([r[name] for r in rounds[server]]) for name in rounds[server][0]}
        for name, r in results[server].items():
            print(f"{server:<10}{name:<20}{r['rps']:>12.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}{r['errors']:>8}{r['cpu_us']:>13.0f} µs")
    production, other = servers[0], servers[-1]
    ratios = [r["recommendations"]["rps"] / r["health"]["rps"] for r in rounds[production]]
    print(f"({production}: ratios of recommendations to /health, round by round: " + ", ".join(f"{r:.0%}" for r in ratios) + ")")
    top_lists = origins.get("top_lists", 0)
    print(f"({production}, the rounds: {top_lists:.0f} answers from the top lists, {1 - origins.get('encoded', 0) / max(top_lists, 1):.1%} "
          f"of them served from the answers each worker keeps encoded)")
    live = origins.get("scored", 0) + origins.get("remembered", 0)
    print(f"({production}, the mix's rounds: {live:.0f} answers for customers with new events, "
          f"{origins.get('remembered', 0) / max(live, 1):.0%} of them remembered from the customer's previous request, "
          f"the rest scored live)")
    print(f"a purchase of their top item, posted for {reflected['customers']} customers one after another on an idle {production}, "
          f"was gone from the very next answer for {reflected['gone']} of them; that answer, scored live: "
          f"p50 {reflected['p50_ms']:.1f} ms, p99 {reflected['p99_ms']:.1f} ms over HTTP")
    if loaded is not None:
        print(f"the same for {loaded['customers']} more customers while wrk kept {production} busy with plain recommendations "
              f"on {args.connections - 1} connections: gone for {loaded['gone']}; that answer p50 {loaded['p50_ms']:.1f} ms, "
              f"p99 {loaded['p99_ms']:.1f} ms")
    total = sum(r["rps"] * args.duration for run in rounds[production] for r in run.values())
    print(f"{production} workers' resident memory: " + "; ".join(f"{moment} " + ", ".join(f"{mb:.0f}" for mb in sizes) + " MB"
                                                          for moment, sizes in memory.items())
          + f" (about {total:,.0f} requests between, the checks after the rounds not counted)")
    ratio = sorted(ratios)[len(ratios) // 2]  # the median round
    ceiling, other_ceiling = results[production]["health"]["rps"], results[other]["health"]["rps"]
    print(f"goals: recommendations >= 80% of the ceiling, p99 <= 10 ms plain and after-purchase, ceiling >= 2.5x {other}'s "
          f"({ceiling / other_ceiling:.1f}x here)")
    print(f"recommendations {ratio:.0%} of ceiling, p99 {results[production]['recommendations']['p99_ms']:.1f} ms; "
          f"after-purchase mix p99 {results[production]['after-purchase mix']['p99_ms']:.1f} ms; "
          f"ceiling {ceiling:.0f} req/s (other server {other_ceiling:.0f} req/s)")


if __name__ == "__main__":
    main()
