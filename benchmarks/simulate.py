"""A storefront simulator against the real server: does the loop close, and does the default model win?

    python benchmarks/simulate.py [--sessions 4000] [--threads 8] [--retrain-at 0.5] [--server granian|gunicorn]   (make simulate)

A synthetic population whose true tastes are known (``recommender.demo``'s latent
tastes: each customer's taste per category and preferred price tier) shops on a
storefront backed by the real server on loopback (``--server granian`` by default, or
gunicorn; two workers) running an experiment:
``control`` served by popular items, ``default`` by the trained model, half and half.
Each session picks a customer (busy customers more often), asks for ten
recommendations, posts an impression for every item shown, clicks each item with
probability 1 - exp(-10 p) where p is the customer's true chance of buying it next,
buys a clicked item with probability 0.3 (half the purchases carry the answer's
``recommendation_id``, half are attributed by customer, item and time), and in 15% of
sessions says "not interested" in the shown item they like least. Halfway through, a
new model is trained on the purchases plus the event store and promoted, and the
server picks it up while the storefront keeps shopping.

It prints per variant impressions, click-through rate and conversion with their 95%
intervals and the verdict, and, last,

    simulate: control ctr A, default ctr B, difference D [lo, hi], verdict V; rejected items shown again: R; events acknowledged N, stored M

and exits 1 unless: the default model wins (D > 0 with the whole interval above 0, and
the verdict names it), no item a customer rejected (acknowledged before the request was
sent) is shown to them again (R = 0), and every acknowledged event is stored (N = M).
The HTML report of the experiment is written beside the other files in ``--workdir``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recommender.demo import generate_store, write_store  # noqa: E402
from serving.production import SERVERS, spawn, stop  # noqa: E402

CLICK_SCALE, BUY_AFTER_CLICK, NOT_INTERESTED_SESSIONS, SHOWN = 10.0, 0.3, 0.15, 10
EXPERIMENT = {"experiments": [{"name": "homepage", "variants": [
    {"name": "control", "model": "popular", "share": 0.5}, {"name": "default", "model": "current", "share": 0.5}]}]}


class Storefront:
    """The shop's side: one kept-alive connection per thread, counts of what was acknowledged."""

    def __init__(self, port: int, latent, seed: int, bought: dict[int, np.ndarray]):
        self.port, self.latent, self.seed, self.bought = port, latent, seed, bought
        self.index = {customer: k for k, customer in enumerate(latent.customer_ids.tolist())}
        self.item_index = {item: k for k, item in enumerate(latent.item_ids.tolist())}
        self.local = threading.local()
        self.lock = threading.Lock()
        self.acknowledged = 0
        self.rejected: dict[str, dict[str, float]] = {}  # customer -> item -> when the rejection was acknowledged
        self.shown_again = 0
        self.expected_clicks: dict[str, float] = {}  # variant -> clicks the true tastes predict for what it showed
        self.shown: dict[str, int] = {}
        self.best_possible = 0.0  # the same for the ten items each session's customer is likeliest to buy

    def request(self, method: str, path: str, body=None) -> tuple[int, dict]:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = self.local.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, json.dumps(body) if body is not None else None, {"Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        except (OSError, http.client.HTTPException):
            self.local.connection = None
            connection.close()
            raise

    def post_events(self, events: list[dict]) -> None:
        status, body = self.request("POST", "/v1/events", {"events": events})
        if status != 202:
            raise RuntimeError(f"events refused: {status} {body}")
        with self.lock:
            self.acknowledged += body["stored"]

    def session(self, number: int, customer: int) -> None:
        rng = np.random.default_rng([self.seed, number])
        customer_id = str(self.latent.customer_ids[customer])
        asked_at = time.monotonic()
        status, answer = self.request("GET", f"/v1/customers/{customer_id}/recommendations?n={SHOWN}")
        if status != 200:
            raise RuntimeError(f"recommendations failed: {status} {answer}")
        shown = [item["item_id"] for item in answer["items"]]
        with self.lock:
            rejected = self.rejected.get(customer_id, {})
            self.shown_again += sum(1 for item in shown if rejected.get(item, float("inf")) < asked_at)
        rid = answer["recommendation_id"]
        chance = self.latent.purchase_probability(customer, np.array([self.item_index[item] for item in shown]))
        events = [{"customer_id": customer_id, "item_id": item, "event_type": "impression", "recommendation_id": rid} for item in shown]
        click_chance = 1 - np.exp(-CLICK_SCALE * chance)
        clicked = rng.random(len(shown)) < click_chance
        every = self.latent.purchase_probability(customer, np.arange(len(self.latent.item_ids)))
        every[self.bought.get(customer, [])] = 0.0  # like the model, the best possible list leaves out what they bought
        best = np.sort(every)[-SHOWN:]
        with self.lock:
            variant = answer["variant"] or "none"
            self.expected_clicks[variant] = self.expected_clicks.get(variant, 0.0) + float(click_chance.sum())
            self.shown[variant] = self.shown.get(variant, 0) + len(shown)
            self.best_possible += float((1 - np.exp(-CLICK_SCALE * best)).sum())
        for item in np.array(shown)[clicked].tolist():
            events.append({"customer_id": customer_id, "item_id": item, "event_type": "click", "recommendation_id": rid})
            if rng.random() < BUY_AFTER_CLICK:
                purchase = {"customer_id": customer_id, "item_id": item, "event_type": "purchase"}
                events.append({**purchase, "recommendation_id": rid} if rng.random() < 0.5 else purchase)
        rejecting = rng.random() < NOT_INTERESTED_SESSIONS
        if rejecting:
            events.append({"customer_id": customer_id, "item_id": shown[int(np.argmin(chance))], "event_type": "not_interested", "recommendation_id": rid})
        self.post_events(events)
        if rejecting:
            with self.lock:
                self.rejected.setdefault(customer_id, {}).setdefault(shown[int(np.argmin(chance))], time.monotonic())


def start_server(workdir: Path, port: int, workers: int, server: str):
    """The production server (serving.production: granian or gunicorn) on loopback, ready."""
    settings = {
        "RECOMMENDER_BIND": f"127.0.0.1:{port}", "RECOMMENDER_WORKERS": str(workers),
        "RECOMMENDER_MODEL_PATH": str(workdir / "models" / "current"), "RECOMMENDER_EVENTS_DB": str(workdir / "events.sqlite3"),
        "RECOMMENDER_EXPERIMENTS": str(workdir / "experiments.json"), "RECOMMENDER_MODEL_CHECK_SECONDS": "1",
        "RECOMMENDER_EXPERIMENT_FIGURES_SECONDS": "0", "RECOMMENDER_LOG_LEVEL": "warning",
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
    }
    return spawn(settings, server=server, log_path=workdir / "server.log", ready_seconds=60, root=ROOT)


def train(workdir: Path, algorithm: str, *, with_events: bool) -> str:
    command = [sys.executable, "-m", "training", "--quiet", "train", "--data", str(workdir / "data" / "purchases.csv"),
               "--catalog", str(workdir / "data" / "catalog.csv"), "--algorithm", algorithm, "--models-dir", str(workdir / "models"), "--promote"]
    if with_events:
        command += ["--events", str(workdir / "events.sqlite3")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=4000)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--items", type=int, default=600)
    parser.add_argument("--purchases", type=int, default=40_000)
    parser.add_argument("--algorithm", default="graph-filter")
    parser.add_argument("--threads", type=int, default=8, help="storefront threads (concurrent sessions)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--server", choices=SERVERS, default=SERVERS[0], help="the production server to run (default: %(default)s)")
    parser.add_argument("--retrain-at", type=float, default=0.5, help="share of sessions after which a model is retrained and promoted (0: never)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=ROOT / "out" / "simulate")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    workdir = args.workdir.resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    (workdir / "metrics").mkdir(parents=True)
    store = generate_store(args.customers, args.items, args.purchases, seed=args.seed)
    write_store(store, workdir / "data")
    (workdir / "experiments.json").write_text(json.dumps(EXPERIMENT))
    first_model = train(workdir, args.algorithm, with_events=False)
    port = _free_port()
    server = start_server(workdir, port, args.workers, args.server)
    shop = Storefront(port, store.latent, args.seed, _bought(store))
    rng = np.random.default_rng(args.seed)
    customers = rng.choice(args.customers, size=args.sessions, p=store.latent.activity / store.latent.activity.sum())
    retrain_at = int(args.sessions * args.retrain_at) if args.retrain_at > 0 else args.sessions
    retrained = None
    try:
        for first, last in ((0, retrain_at), (retrain_at, args.sessions)):
            if first == retrain_at and first < args.sessions:
                retrained = train(workdir, args.algorithm, with_events=True)
                time.sleep(2.5)  # workers check models/current every second
            with ThreadPoolExecutor(args.threads) as pool:
                list(pool.map(shop.session, range(first, last), customers[first:last].tolist()))
        time.sleep(1.0)  # the workers' last buffered answers reach the log
        figures = shop.request("GET", "/v1/experiments/homepage")[1]
        serving_versions = {shop.request("GET", "/v1/model")[1]["version"]}
    finally:
        stop(server)
    report = workdir / "report.html"
    subprocess.run([sys.executable, "-m", "training", "experiments", "report", "--events", str(workdir / "events.sqlite3"), "--out", str(report),
                    "--experiments", str(workdir / "experiments.json"), "--model", str(workdir / "models" / "current")],
                   cwd=ROOT, check=True, capture_output=True)
    with sqlite3.connect(workdir / "events.sqlite3") as connection:
        stored = connection.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    return _summary(args, figures, shop, stored, first_model, retrained, serving_versions, report, time.perf_counter() - started)


def _summary(args, figures, shop, stored, first_model, retrained, serving_versions, report, seconds) -> int:
    variants = {v["name"]: v for v in figures["variants"]}
    print(f"{args.sessions} sessions of {SHOWN} items by {args.customers} customers, {args.threads} storefront threads, "
          f"{args.server} with {args.workers} workers, {seconds:.0f} s; models {first_model} then {retrained or '-'} (served at the end: {', '.join(serving_versions)})")
    for name, v in variants.items():
        print(f"  {name:8} ({v['model']}): answers {v['answers']}, impressions {v['impressions']}, clicks {v['clicks']}, "
              f"ctr {v['ctr']:.4f} [{v['ctr_interval'][0]:.4f}, {v['ctr_interval'][1]:.4f}], purchases {v['purchases']}, "
              f"conversion {v['conversion']:.4f} [{v['conversion_interval'][0]:.4f}, {v['conversion_interval'][1]:.4f}], not interested {v['not_interested']}")
    expected = ", ".join(f"{name} {shop.expected_clicks[name] / shop.shown[name]:.4f}" for name in variants if shop.shown.get(name))
    print(f"  click-through rate the true tastes predict for what was shown: {expected}; "
          f"for the ten unbought items each customer is likeliest to buy: {shop.best_possible / (SHOWN * args.sessions):.4f}")
    found, verdict = variants["default"]["difference"], figures["verdict"]
    print(f"  method: {figures['method']}")
    print(f"  report: {report}")
    failures = []
    if not (found["estimate"] > 0 and found["low"] > 0 and verdict["status"] == "leading" and verdict["variant"] == "default"):
        failures.append("the default model did not win with a significant interval")
    if shop.shown_again:
        failures.append(f"{shop.shown_again} rejected items were shown again")
    if stored != shop.acknowledged:
        failures.append(f"{shop.acknowledged} events acknowledged but {stored} stored")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    sys.stderr.flush()
    print(f"simulate: control ctr {variants['control']['ctr']:.4f}, default ctr {variants['default']['ctr']:.4f}, "
          f"difference {found['estimate']:.4f} [{found['low']:.4f}, {found['high']:.4f}], verdict {verdict['text']}; "
          f"rejected items shown again: {shop.shown_again}; events acknowledged {shop.acknowledged}, stored {stored}")
    return 1 if failures else 0


def _bought(store) -> dict[int, np.ndarray]:
    """Each customer's purchased items in the store's history, as indices."""
    customers = {c: k for k, c in enumerate(store.latent.customer_ids.tolist())}
    items = {i: k for k, i in enumerate(store.latent.item_ids.tolist())}
    bought: dict[int, set] = {}
    for customer, item in zip(store.purchases.column("customer_id").to_pylist(), store.purchases.column("item_id").to_pylist()):
        bought.setdefault(customers[customer], set()).add(items[item])
    return {customer: np.fromiter(found, dtype=np.int64) for customer, found in bought.items()}


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


if __name__ == "__main__":
    sys.exit(main())
