"""Bounded stress run on loopback: the production server (2+ workers), concurrent readers and event writers.

    python benchmarks/stress.py --duration 10 --readers 4 --writers 2 --workers 2
    python benchmarks/stress.py --duration 10 --readers 4 --writers 2 --workers 2 --hosts 2

Trains a small item-kNN model on a seeded demo store into a temporary folder, starts
the production server (granian; --server gunicorn) on 127.0.0.1, and for ``--duration`` seconds (at most 120) readers ask for
recommendations while writers post uniquely named events. Then the server is stopped
and the SQLite store is read directly. Prints requests sent, failed, p50/p99 latency,
events acknowledged and stored; exits 1 on any failed request, lost event or failed
integrity check.

With ``--hosts N`` (2 or more) it starts a throwaway PostgreSQL cluster (initdb in a
temporary folder, a loopback port; removed afterwards) and N servers on their own ports
sharing it and the models folder, as N API hosts behind a load balancer would; readers
and writers are spread over the hosts in turn. The last line is then
``hosts N: requests R, failed F, p99 P ms, events acknowledged A, stored S``, and every
acknowledged event must be stored once, with the item that was sent.
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
        self.items: dict[str, str] = {}  # acknowledged customer -> the item sent

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
    item_sent = {}
    client, rng, sequence = Client(port), random.Random(number), 0
    while not stop.is_set():
        sequence += 1
        customer = f"stress-{number}-{sequence}"
        item_sent[customer] = rng.choice(items)
        body = json.dumps({"customer_id": customer, "item_id": item_sent[customer]}).encode()
        started = time.perf_counter()
        try:
            status, raw = client.request("POST", "/v1/events", body)
        except (OSError, http.client.HTTPException) as error:
            tally.record(time.perf_counter() - started, f"POST /v1/events: {error!r}")
            continue
        ok = status == 202 and json.loads(raw) == {"stored": 1, "already_stored": 0}
        tally.record(time.perf_counter() - started, None if ok else f"POST /v1/events: {status}")
        if ok:
            with tally.lock:
                tally.acknowledged.add(customer)
                tally.items[customer] = item_sent[customer]


def start_server(port: int, folder: Path, models_dir: Path, workers: int, server: str, events_url: str | None = None, name: str = "server") -> subprocess.Popen:
    settings = {
        "RECOMMENDER_BIND": f"127.0.0.1:{port}",
        "RECOMMENDER_WORKERS": str(workers),
        "RECOMMENDER_MODEL_PATH": str(models_dir / "current"),
        "RECOMMENDER_EVENTS_DB": str(folder / "events.sqlite3"),
        "PROMETHEUS_MULTIPROC_DIR": str(folder / f"metrics-{name}"),
        "RECOMMENDER_LOG_LEVEL": "warning",
    }
    if events_url:
        settings["RECOMMENDER_EVENTS_URL"] = events_url
    try:
        return spawn(settings, server=server, log_path=folder / f"{name}.log", ready_seconds=30, root=ROOT)
    except ServerDidNotStart as error:
        raise SystemExit(str(error)) from None


def drive(ports: list[int], customers: list[str], items: list[str], args, duration: float) -> tuple[Tally, float]:
    """``args.readers`` readers and ``args.writers`` event writers spread over ``ports`` for
    ``duration`` seconds; returns what they saw and the seconds they ran."""
    tally, stop = Tally(), threading.Event()
    threads = [threading.Thread(target=reader, args=(ports[k % len(ports)], customers, stop, tally, k)) for k in range(args.readers)]
    threads += [threading.Thread(target=writer, args=(ports[k % len(ports)], items, stop, tally, k)) for k in range(args.writers)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(duration)
    stop.set()
    for thread in threads:
        thread.join()
    return tally, time.monotonic() - started


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
    parser.add_argument("--hosts", type=int, default=1, help="API hosts; 2 or more share a throwaway PostgreSQL (default: %(default)s, SQLite)")
    args = parser.parse_args(argv)
    duration = min(max(args.duration, 1.0), MAX_SECONDS)
    if args.hosts > 1:
        return several_hosts(args, duration)
    with tempfile.TemporaryDirectory(prefix="recommender-stress-") as temporary:
        folder = Path(temporary)
        files = write_store(generate_store(customers=2000, items=500, purchases=40_000, seed=11), folder / "data")
        trained = train(files["purchases"], catalog_path=files["catalog"], algorithm="item-knn", models_dir=folder / "models", promote=True)
        customers, items = trained.model.customers.ids.tolist(), trained.model.items.ids.tolist()
        customers += [f"new-customer-{k}" for k in range(50)]  # the fallback path too
        port = free_port()
        server = start_server(port, folder, folder / "models", max(2, args.workers), args.server)
        tally, elapsed = drive([port], customers, items, args, duration)
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


def several_hosts(args, duration: float) -> int:
    """The run across ``args.hosts`` hosts and one throwaway PostgreSQL cluster."""
    from recommender.events import open_event_store
    from tests.postgres_cluster import ThrowawayCluster, why_unavailable

    reason = why_unavailable()
    if reason:
        raise SystemExit(f"stress --hosts {args.hosts}: {reason}")
    workers = max(2, args.workers)
    with tempfile.TemporaryDirectory(prefix="recommender-stress-") as temporary, ThrowawayCluster() as cluster:  # a folder of its own, removed at the end
        folder = Path(temporary)
        files = write_store(generate_store(customers=2000, items=500, purchases=40_000, seed=11), folder / "data")
        trained = train(files["purchases"], catalog_path=files["catalog"], algorithm="item-knn", models_dir=folder / "models", promote=True)
        customers, items = trained.model.customers.ids.tolist(), trained.model.items.ids.tolist()
        customers += [f"new-customer-{k}" for k in range(50)]
        ports = [free_port() for _ in range(args.hosts)]
        servers = []
        try:
            for number, port in enumerate(ports):
                servers.append(start_server(port, folder, folder / "models", workers, args.server, cluster.url, name=f"host-{number}"))
            tally, elapsed = drive(ports, customers, items, args, duration)
        finally:
            for server in servers:
                server.send_signal(signal.SIGTERM)
            for server in servers:
                server.wait(timeout=30)
        store = open_event_store(cluster.url)
        rows = [(e.customer_id, e.item_id) for e in store.feedback_events(types=("purchase",)) if e.customer_id.startswith("stress-")]
        store.close()
    stored = dict(rows)
    lost = tally.acknowledged - set(stored)
    altered = [c for c in tally.acknowledged & set(stored) if stored[c] != tally.items[c]]
    duplicated = len(rows) - len(stored)
    sent = len(tally.latencies)
    p99 = percentile(tally.latencies, 0.99) * 1000
    print(f"stress: {duration:.0f}s on 127.0.0.1, {args.hosts} hosts ({args.server}, {workers} workers each) sharing a throwaway PostgreSQL, "
          f"{args.readers} readers, {args.writers} writers spread over the hosts")
    print(f"  requests sent        {sent} ({sent / elapsed:.0f}/s)")
    print(f"  latency p50 / p99    {percentile(tally.latencies, 0.50) * 1000:.1f} ms / {p99:.1f} ms")
    print(f"  events lost          {len(lost)}; stored with another item {len(altered)}; stored twice {duplicated}")
    for failure in tally.failures[:5]:
        print(f"  failure: {failure}")
    healthy = not tally.failures and not lost and not altered and not duplicated and len(stored) == len(tally.acknowledged)
    print("PASS" if healthy else "FAIL")
    print(f"hosts {args.hosts}: requests {sent}, failed {len(tally.failures)}, p99 {p99:.1f} ms, "
          f"events acknowledged {len(tally.acknowledged)}, stored {len(stored)}")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
