"""Several API hosts, one PostgreSQL event store: two real production servers (granian,
two workers each) on different loopback ports stand for two hosts behind a load
balancer; they share a throwaway PostgreSQL cluster and one models folder.

What only a multi-host deployment can get wrong: an event posted to one host must shape
the very next answer of the other; a host killed mid-stream must lose nothing it
acknowledged; a database restart must turn writes into 503 while it is down, lose
nothing acknowledged, and leave both hosts working again without a restart; a promotion
must reach both hosts with no failed request.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import threading
import time
from collections import Counter

import pytest

from recommender.artifacts import promote
from recommender.events import open_event_store
from serving.erasure_list import REFRESH_SECONDS
from tests.conftest import GARDEN, KITCHEN, bought_by, free_port, train_model
from tests.server_process import kill_group, start_server
from tests.server_process import stop as stop_server

pytestmark = pytest.mark.slow
_STREAMS = itertools.count(1)


class Host:
    """One API host: a production server on its own port."""

    def __init__(self, name: str, port: int, process):
        self.name, self.port, self.process = name, port, process

    def request(self, method: str, path: str, body=None) -> tuple[int, dict]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, json.dumps(body) if body is not None else None, {"Content-Type": "application/json"} if body else {})
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            connection.close()

    def recommended(self, customer: str, n: int = 2) -> list[str]:
        status, body = self.request("GET", f"/v1/customers/{customer}/recommendations?n={n}")
        assert status == 200, body
        return [item["item_id"] for item in body["items"]]


@pytest.fixture(scope="module")
def shared(postgres_cluster, trained_models, tmp_path_factory):
    """What the hosts share: a database (a schema of the session's cluster) and a models folder."""
    import shutil
    import uuid

    import psycopg

    folder = tmp_path_factory.mktemp("hosts")
    schema = f"hosts_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_cluster.url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    shutil.copytree(trained_models, folder / "models", symlinks=True)
    return {"url": f"{postgres_cluster.url}?options=-csearch_path%3D{schema}", "models": folder / "models", "folder": folder}


@pytest.fixture(scope="module")
def hosts(shared):
    """Two hosts for the whole module (starting them is most of its time); the test that
    kills one runs last."""
    settings = {
        "RECOMMENDER_MODEL_PATH": str(shared["models"] / "current"),
        "RECOMMENDER_EVENTS_URL": shared["url"],
        "RECOMMENDER_MODEL_CHECK_SECONDS": "0.2",
    }
    started: dict[str, Host] = {}

    def start(name: str) -> None:
        port = free_port()
        own = {**settings, "PROMETHEUS_MULTIPROC_DIR": str(shared["folder"] / f"metrics-{name}")}
        started[name] = Host(name, port, start_server(port, shared["folder"] / f"host-{name}.log", own))

    threads = [threading.Thread(target=start, args=(name,)) for name in ("a", "b")]  # started side by side
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert set(started) == {"a", "b"}, "a host did not start; see host-*.log"
        yield [started["a"], started["b"]]
    finally:
        for host in started.values():
            stop_server(host.process)


def test_an_event_posted_to_one_host_shapes_the_very_next_answer_of_the_other(hosts):
    first, second = hosts
    for round_number, customer in enumerate(["d0", "d1", "d2", "d3", "d4", "d5"]):  # other tests ask about c1
        writer, reader = (first, second) if round_number % 2 == 0 else (second, first)
        before = reader.recommended(customer)
        assert set(before) == set(KITCHEN) - set(bought_by(customer))
        status, body = writer.request("POST", "/v1/events", {"customer_id": customer, "item_id": before[0], "event_type": "not_interested"})
        assert status == 202, body
        after = reader.recommended(customer)  # at once: no waiting for a notification
        assert before[0] not in after and after[0] == before[1], (customer, before, after)


@contextlib.contextmanager
def event_stream(hosts, writers_per_host: int = 2):
    """Threads posting uniquely named events to every host until the block ends. Yields a
    record: acknowledged customer ids (and when each was sent and answered), statuses and error codes per host, and connection
    errors per host (a killed host's)."""
    tag = f"s{next(_STREAMS)}"  # each stream's ids its own: the hosts share one store for the module
    record = {"tag": tag, "acknowledged": [], "statuses": Counter(), "codes": Counter(), "connection_errors": Counter(), "acknowledged_at": [], "messages": []}
    lock, stop = threading.Lock(), threading.Event()

    def post(host: Host, number: int) -> None:
        sequence = 0
        while not stop.is_set():
            sequence += 1
            customer = f"{tag}-{host.name}-{number}-{sequence}"
            sent_at = time.monotonic()
            try:
                status, body = host.request("POST", "/v1/events", {"customer_id": customer, "item_id": "a1", "timestamp": 1_700_000_000 + sequence})
            except (OSError, http.client.HTTPException):
                with lock:
                    record["connection_errors"][host.name] += 1
                time.sleep(0.05)
                continue
            with lock:
                record["statuses"][(host.name, status)] += 1
                if status == 202 and body == {"stored": 1, "already_stored": 0}:
                    record["acknowledged"].append(customer)
                    # When the request was sent, and when its answer was read (a loaded machine can
                    # read it late; a request can wait up to a second for a connection).
                    record["acknowledged_at"].append((host.name, sent_at, time.monotonic()))
                else:
                    record["codes"][body.get("error", {}).get("code")] += 1
                    record["messages"].append((host.name, status, body.get("error", {}).get("message")))

    threads = [threading.Thread(target=post, args=(host, k)) for host in hosts for k in range(writers_per_host)]
    for thread in threads:
        thread.start()
    try:
        yield record
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def stored_stream_events(url: str, tag: str) -> dict[str, list]:
    store = open_event_store(url)
    try:
        rows = [(event.customer_id, event) for event in store.feedback_events(types=("purchase",))]
    finally:
        store.close()
    stored: dict[str, list] = {}
    for customer, event in rows:
        if customer.startswith(tag + "-"):
            stored.setdefault(customer, []).append(event)
    return stored


def assert_nothing_acknowledged_was_lost(record, url: str) -> None:
    stored = stored_stream_events(url, record["tag"])
    assert set(record["acknowledged"]) <= set(stored), f"{len(set(record['acknowledged']) - set(stored))} acknowledged events lost"
    for customer, events in stored.items():  # every stored row intact, and stored once
        sequence = int(customer.rsplit("-", 1)[1])
        assert [(e.item_id, e.event_type, e.quantity, e.timestamp) for e in events] == [("a1", "purchase", 1.0, 1_700_000_000 + sequence)]


def test_a_database_restart_gives_503_while_down_then_both_hosts_recover_without_a_restart(hosts, postgres_cluster, shared):
    first, second = hosts
    with event_stream(hosts) as record:
        time.sleep(1.0)
        postgres_cluster.stop()
        down_at = time.monotonic()
        time.sleep(1.5)
        reads_while_down = [host.request("GET", "/v1/customers/c1/recommendations?n=2") for host in hosts]
        starting_at = time.monotonic()  # the server accepts connections before pg_ctl's wait for it ends
        postgres_cluster.start()
        up_at = time.monotonic()
        time.sleep(4.0)
    assert record["connection_errors"] == Counter()
    assert {status for _, status in record["statuses"]} == {202, 503}  # never a 500
    assert set(record["codes"]) == {"event_store_unavailable"}
    # Reads are still answered from the model alone while the database is down.
    assert [status for status, _ in reads_while_down] == [200, 200]
    assert [item["item_id"] for item in reads_while_down[0][1]["items"]] == sorted(set(GARDEN) - set(bought_by("c1")))
    # Both hosts acknowledged events again after the restart, by themselves.
    for name in ("a", "b"):
        assert any(host == name and sent > up_at for host, sent, _ in record["acknowledged_at"]), f"host {name} did not recover"
    # Sent after the stop and answered before the start began: a commit with no server, impossible.
    # (Sent while down and answered after the start is right: the request waited for a connection.)
    acknowledged_while_down = [(host, round(sent - down_at, 2)) for host, sent, answered in record["acknowledged_at"] if down_at < sent and answered < starting_at]
    assert acknowledged_while_down == [], f"sent after the stop, acknowledged before the start {starting_at - down_at:.2f} s after it"
    assert_nothing_acknowledged_was_lost(record, shared["url"])


def test_an_erased_customer_stays_erased_on_both_hosts_while_the_database_is_down(hosts, postgres_cluster):
    """The served model predates the erasure, so while no worker can ask the database, the
    erasure list it last read must keep the customer's training history out of their answers;
    "answered from the model alone" must not hand it back (a new user's trial found it did)."""
    first, second = hosts
    erased = "c3"
    status, body = first.request("GET", f"/v1/customers/{erased}/recommendations?n=2")
    assert status == 200 and body["source"] == "personalised", body
    status, body = first.request("DELETE", f"/v1/customers/{erased}")
    assert status == 200, body
    time.sleep(REFRESH_SECONDS + 1.5)  # every worker of both hosts has read the erasure list since
    postgres_cluster.stop()
    try:
        answers = [host.request("GET", f"/v1/customers/{erased}/recommendations?n=2") for host in hosts for _ in range(4)]
        others = [host.request("GET", "/v1/customers/c1/recommendations?n=2") for host in hosts]
    finally:
        postgres_cluster.start()
    assert [(status, body["source"]) for status, body in answers] == [(200, "popular")] * 8, answers
    assert [(status, body["source"]) for status, body in others] == [(200, "personalised")] * 2  # the model alone, as before
    deadline = time.monotonic() + 15
    while second.request("POST", "/v1/events", {"customer_id": "d9", "item_id": "a1", "event_type": "view"})[0] != 202:
        assert time.monotonic() < deadline, "the hosts did not recover after the database came back"
        time.sleep(0.2)


def test_a_promotion_reaches_both_hosts_with_no_failed_request(hosts, shared, tmp_path):
    new = train_model(tmp_path / "data2", shared["models"], make_current=False)
    failures, versions, stop = [], {"a": [], "b": []}, threading.Event()

    def traffic(host: Host) -> None:
        while not stop.is_set():
            try:
                status, body = host.request("GET", "/v1/customers/c1/recommendations?n=2")
            except OSError as error:
                failures.append(repr(error))
                continue
            if status != 200 or {i["item_id"] for i in body["items"]} != set(GARDEN) - set(bought_by("c1")):
                failures.append((status, body))
            else:
                versions[host.name].append(body["model_version"])

    threads = [threading.Thread(target=traffic, args=(host,)) for host in hosts for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.8)
    promote(shared["models"], new.name)  # one shared models folder: what NFS or a synced folder gives every host
    time.sleep(1.5)
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == []
    for name in ("a", "b"):
        assert versions[name][0] != new.name and versions[name][-1] == new.name


def test_a_host_killed_during_a_stream_of_events_loses_nothing_it_acknowledged(hosts, shared):
    """Last in the module: host a stays dead."""
    first, second = hosts
    with event_stream(hosts) as record:
        time.sleep(1.5)
        kill_group(first.process)  # kill -9 of the master and every worker: no shutdown code runs
        killed_at = time.monotonic()
        time.sleep(1.5)
    assert record["statuses"][("a", 202)] > 0 and record["connection_errors"]["a"] > 0  # it was working, then gone
    assert record["connection_errors"]["b"] == 0 and set(record["statuses"]) == {("a", 202), ("b", 202)}, record["messages"][:5]
    assert any(name == "b" and sent > killed_at + 0.5 for name, sent, _ in record["acknowledged_at"])  # the other host carried on
    assert_nothing_acknowledged_was_lost(record, shared["url"])
