"""Closing the loop across real worker processes (the production server, granian and
gunicorn, two workers on loopback): an answer served by one worker is attributed from an
event posted to the other; assignment is the same in both workers and after a restart;
"not interested" and erasure reach the other worker's very next answer."""

from __future__ import annotations

import http.client
import json
import time

import pytest

from recommender.experiments import assign, parse_experiments
from tests.conftest import free_port
from tests.server_process import PRODUCTION_SERVER, SERVERS, start_server, stop
from tests.test_experiments import HOMEPAGE

pytestmark = pytest.mark.slow
CUSTOMERS = [f"{p}{k}" for p in "cd" for k in range(6)]


class Worker:
    """A kept-alive connection, so every request reaches the same worker process."""

    def __init__(self, port: int):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.pid = self.request("GET", "/health")[2]

    def request(self, method: str, path: str, body=None) -> tuple[int, dict, str]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.connection.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = self.connection.getresponse()
        return response.status, json.loads(response.read()), response.getheader("X-Served-By")


def two_workers(port: int) -> tuple[Worker, Worker]:
    """One connection to each of the two workers (new connections land on either)."""
    found: dict[str, Worker] = {}
    for _ in range(200):
        worker = Worker(port)
        found.setdefault(worker.pid, worker)
        if len(found) == 2:
            return tuple(found.values())
    raise AssertionError("every connection reached the same worker")


@pytest.fixture
def running(request, models_dir, tmp_path):
    """Start the server (the production one, or the test's ``running`` parameter) on demand."""
    server = getattr(request, "param", PRODUCTION_SERVER)
    (tmp_path / "experiments.json").write_text(json.dumps({"experiments": [HOMEPAGE]}))
    settings = {
        "RECOMMENDER_MODEL_PATH": str(models_dir / "current"),
        "RECOMMENDER_EVENTS_DB": str(tmp_path / "events.sqlite3"),
        "RECOMMENDER_EXPERIMENTS": str(tmp_path / "experiments.json"),
        "RECOMMENDER_EXPERIMENT_FIGURES_SECONDS": "0",
        "RECOMMENDER_ANSWER_LOG_FLUSH_SECONDS": "0.05",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    servers = []

    def start():
        port = free_port()
        servers.append(start_server(port, tmp_path / "server.log", settings, server=server))
        return port

    yield start, servers
    for process in servers:
        stop(process)


@pytest.mark.parametrize("running", SERVERS, indirect=True)
def test_an_answer_from_one_worker_is_attributed_from_an_event_posted_to_the_other(running):
    start, _ = running
    first, second = two_workers(start())
    status, answer, served_by = first.request("GET", "/v1/customers/c0/recommendations?n=2")
    assert status == 200 and served_by == first.pid and answer["experiment"] == "homepage"
    item = answer["items"][0]["item_id"]
    click = {"customer_id": "c0", "item_id": item, "event_type": "click", "recommendation_id": answer["recommendation_id"]}
    status, _, served_by = second.request("POST", "/v1/events", click)
    assert status == 202 and served_by == second.pid
    deadline = time.monotonic() + 10
    while True:  # the first worker logs its answers every 50 ms
        variants = {v["name"]: v for v in second.request("GET", "/v1/experiments/homepage")[1]["variants"]}
        if variants[answer["variant"]]["clicks"] == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert (variants[answer["variant"]]["answers"], variants[answer["variant"]]["impressions"], variants[answer["variant"]]["clicks"]) == (1, 1, 1)
    assert sum(v["clicks"] for v in variants.values()) == 1


def test_assignment_is_the_same_in_both_workers_and_after_a_restart(running):
    start, servers = running
    expected = {c: assign(parse_experiments({"experiments": [HOMEPAGE]}).named("homepage"), c).name for c in CUSTOMERS}
    first, second = two_workers(start())
    for worker in (first, second):
        assert {c: worker.request("GET", f"/v1/customers/{c}/recommendations")[1]["variant"] for c in CUSTOMERS} == expected
    stop(servers[0])
    again = Worker(start())
    assert {c: again.request("GET", f"/v1/customers/{c}/recommendations")[1]["variant"] for c in CUSTOMERS} == expected


def test_not_interested_and_erasure_reach_the_other_workers_next_answer(running):
    start, _ = running
    homepage = parse_experiments({"experiments": [HOMEPAGE]}).named("homepage")
    customer = next(c for c in CUSTOMERS if assign(homepage, c).name == "default")  # served by the personalised model
    first, second = two_workers(start())
    answer = first.request("GET", f"/v1/customers/{customer}/recommendations?n=3")[1]
    assert answer["source"] == "personalised"
    shown = [item["item_id"] for item in answer["items"]]
    assert second.request("POST", "/v1/events", {"customer_id": customer, "item_id": shown[0], "event_type": "not_interested"})[0] == 202
    assert shown[0] not in [item["item_id"] for item in first.request("GET", f"/v1/customers/{customer}/recommendations?n=10")[1]["items"]]
    assert second.request("DELETE", f"/v1/customers/{customer}")[0] == 200
    body = first.request("GET", f"/v1/customers/{customer}/recommendations?n=3")[1]
    assert body["source"] == "popular" and first.request("GET", f"/v1/customers/{customer}/history")[1]["purchases"] == []
