"""Bounded stress run on loopback: the production server (2+ workers), concurrent readers and event writers.

    python benchmarks/stress.py --duration 10 --readers 4 --writers 2 --workers 2

Trains a small item-kNN model on a seeded demo store into a temporary folder, starts
the production server (granian; --server gunicorn) on 127.0.0.1, and for ``--duration`` seconds (at most 120) readers ask for
recommendations while writers post uniquely named events. Then the server is stopped
and the SQLite store is read directly. Prints requests sent, failed, p50/p99 latency,
events acknowledged and stored; exits 1 on any failed request, lost event or failed
integrity check.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recommender.demo import generate_store, write_store  # noqa: E402
from serving.production import SERVERS, ServerDidNotStart, spawn  # noqa: E402
from training.pipeline import train  # noqa: E402

MAX_SECONDS = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Client:
    """One keep-alive connection per thread, reopened after an error."""

    def __init__(self, port: int):
        self.port = port
        self.connection: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            self.connection.request(method, path, body, {"Content-Type": "application/json"} if body else {})
            response = self.connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = None
            raise


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.acknowledged: set[str] = set()

    def record(self, seconds: float, failure: str | None = None) -> None:
        with self.lock:
            self.latencies.append(seconds)
            if failure:
                self.failures.append(failure)


def reader(port: int, customers: list[str], stop: threading.Event, tally: Tally, seed: int) -> None:
    client, rng = Client(port), random.Random(seed)
    while not stop.is_set():
        path = f"/v1/customers/{rng.choice(customers)}/recommendations?n=10"
        started = time.perf_counter()
        try:
            status, _ = client.request("GET", path)
            tally.record(time.perf_counter() - started, None if status == 200 else f"GET {path}: {status}")
        except (OSError, http.client.HTTPException) as error:
            tally.record(time.perf_counter() - started, f"GET {path}: {error!r}")


def writer(port: int, items: list[str], stop: threading.Event, tally: Tally, number: int) -> None:
    client, rng, sequence = Client(port), random.Random(number), 0
    while not stop.is_set():
        sequence += 1
        customer = f"stress-{number}-{sequence}"
        body = json.dumps({"customer_id": customer, "item_id": rng.choice(items)}).encode()
        started = time.perf_counter()
        try:
            status, raw = client.request("POST", "/v1/events", body)
        except (OSError, http.client.HTTPException) as error:
            tally.record(time.perf_counter() - started, f"POST /v1/events: {error!r}")
            continue
        ok = status == 202 and json.loads(raw) == {"stored": 1}
        tally.record(time.perf_counter() - started, None if ok else f"POST /v1/events: {status}")
        if ok:
            with tally.lock:
                tally.acknowledged.add(customer)


def start_server(port: int, folder: Path, models_dir: Path, workers: int, server: str) -> subprocess.Popen:
    settings = {
        "RECOMMENDER_BIND": f"127.0.0.1:{port}",
        "RECOMMENDER_WORKERS": str(workers),
        "RECOMMENDER_MODEL_PATH": str(models_dir / "current"),
        "RECOMMENDER_EVENTS_DB": str(folder / "events.sqlite3"),
        "PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics"),
        "RECOMMENDER_LOG_LEVEL": "warning",
    }
    try:
        return spawn(settings, server=server, log_path=folder / "server.log", ready_seconds=30, root=ROOT)
    except ServerDidNotStart as error:
        raise SystemExit(str(error)) from None


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help=f"seconds of load (at most {MAX_SECONDS})")
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (2 or more)")
    parser.add_argument("--server", choices=SERVERS, default=SERVERS[0], help="HTTP server (default: %(default)s, the production one)")
    args = parser.parse_args(argv)
    duration = min(max(args.duration, 1.0), MAX_SECONDS)
    with tempfile.TemporaryDirectory(prefix="recommender-stress-") as temporary:
        folder = Path(temporary)
        files = write_store(generate_store(customers=2000, items=500, purchases=40_000, seed=11), folder / "data")
        trained = train(files["purchases"], catalog_path=files["catalog"], algorithm="item-knn", models_dir=folder / "models", promote=True)
        customers, items = trained.model.customers.ids.tolist(), trained.model.items.ids.tolist()
        customers += [f"new-customer-{k}" for k in range(50)]  # the fallback path too
        port = free_port()
        server = start_server(port, folder, folder / "models", max(2, args.workers), args.server)
        tally, stop = Tally(), threading.Event()
        threads = [threading.Thread(target=reader, args=(port, customers, stop, tally, k)) for k in range(args.readers)]
        threads += [threading.Thread(target=writer, args=(port, items, stop, tally, k)) for k in range(args.writers)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        time.sleep(duration)
        stop.set()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        connection = sqlite3.connect(folder / "events.sqlite3")
        stored = {row[0] for row in connection.execute("SELECT customer_id FROM events WHERE customer_id LIKE 'stress-%'")}
        integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
        connection.close()
    lost = tally.acknowledged - stored
    sent = len(tally.latencies)
    print(f"stress: {duration:.0f}s on 127.0.0.1, {args.server} with {max(2, args.workers)} workers, {args.readers} readers, {args.writers} writers")
    print(f"  requests sent        {sent} ({sent / elapsed:.0f}/s)")
    print(f"  requests failed      {len(tally.failures)}")
    print(f"  latency p50 / p99    {percentile(tally.latencies, 0.50) * 1000:.1f} ms / {percentile(tally.latencies, 0.99) * 1000:.1f} ms")
    print(f"  events acknowledged  {len(tally.acknowledged)}")
    print(f"  events stored        {len(stored)}")
    print(f"  events lost          {len(lost)}")
    print(f"  integrity_check      {integrity}")
    for failure in tally.failures[:5]:
        print(f"  failure: {failure}")
    healthy = not tally.failures and not lost and integrity == "ok" and len(stored) == len(tally.acknowledged)
    print("PASS" if healthy else "FAIL")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
