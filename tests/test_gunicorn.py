"""The real thing: gunicorn with two worker processes on loopback, driven over HTTP.

These tests start and stop their own server. They check what only a multi-process
deployment can get wrong: an event posted to one worker must change what the other
worker serves, a promotion must be picked up with no failed request, and /metrics
must add up every worker's counters.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from recommender.artifacts import promote
from tests.conftest import GARDEN, bought_by, free_port, train_model

pytestmark = pytest.mark.slow
CONFIG = Path(__file__).resolve().parents[1] / "serving" / "gunicorn.conf.py"


class Server:
    """A gunicorn process serving the app; requests use a fresh connection each time."""

    def __init__(self, port: int, process: subprocess.Popen):
        self.port = port
        self.process = process

    def request(self, method: str, path: str, body=None) -> tuple[int, dict, dict]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            connection.request(method, path, json.dumps(body) if body is not None else None, headers)
            response = connection.getresponse()
            raw = response.read()
            payload = json.loads(raw) if response.getheader("Content-Type", "").startswith("application/json") else {"text": raw.decode()}
            return response.status, payload, dict(response.getheaders())
        finally:
            connection.close()


@pytest.fixture
def server(models_dir, tmp_path):
    port = free_port()
    environment = {
        **os.environ,
        "RECOMMENDER_BIND": f"127.0.0.1:{port}",
        "RECOMMENDER_WORKERS": "2",
        "RECOMMENDER_MODEL_PATH": str(models_dir / "current"),
        "RECOMMENDER_EVENTS_DB": str(tmp_path / "events.sqlite3"),
        "RECOMMENDER_MODEL_CHECK_SECONDS": "0.2",
        "RECOMMENDER_SERVED_BY_HEADER": "true",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    log = open(tmp_path / "gunicorn.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", str(CONFIG)], env=environment, stdout=log, stderr=subprocess.STDOUT)
    running = Server(port, process)
    deadline = time.monotonic() + 30
    while True:
        try:
            if running.request("GET", "/ready")[0] == 200:
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("gunicorn did not become ready:\n" + (tmp_path / "gunicorn.log").read_text())
        time.sleep(0.1)
    yield running
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def answers_from_both_workers(server, path: str, at_least: int = 30, limit: int = 400) -> list[tuple[str, dict]]:
    """Query until both worker processes have answered and at least ``at_least`` answers came."""
    answers = []
    for _ in range(limit):
        status, body, headers = server.request("GET", path)
        assert status == 200, body
        answers.append((headers["X-Served-By"], body))
        if len(answers) >= at_least and len({pid for pid, _ in answers}) == 2:
            return answers
    pytest.fail(f"only workers { {pid for pid, _ in answers} } answered {limit} requests")


def test_an_event_posted_to_one_worker_changes_what_every_worker_serves(server):
    before = answers_from_both_workers(server, "/v1/customers/c0/recommendations?n=2", at_least=4)
    assert all({i["item_id"] for i in body["items"]} == {"a3", "a4"} for _, body in before)
    status, body, headers = server.request("POST", "/v1/events", {"customer_id": "c0", "item_id": "a3"})
    assert status == 202
    after = answers_from_both_workers(server, "/v1/customers/c0/recommendations?n=2")
    for _, body in after:
        recommended = [item["item_id"] for item in body["items"]]
        assert "a3" not in recommended and recommended[0] == "a4", recommended
        assert not set(recommended) & set(bought_by("c0"))


@contextlib.contextmanager
def garden_traffic(server, clients: int = 4):
    """Keep ``clients`` threads asking for c1's recommendations until the block ends.

    Yields (failures, answers): failures holds every error, non-200 or wrong answer;
    answers the (worker pid, model version) of every good one, in order.
    """
    failures, answers, stop = [], [], threading.Event()

    def traffic():
        while not stop.is_set():
            try:
                status, body, headers = server.request("GET", "/v1/customers/c1/recommendations?n=2")
            except OSError as error:
                failures.append(repr(error))
                continue
            if status != 200 or {i["item_id"] for i in body["items"]} != set(GARDEN) - set(bought_by("c1")):
                failures.append((status, body))
            else:
                answers.append((headers["X-Served-By"], body["model_version"]))

    threads = [threading.Thread(target=traffic) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield failures, answers
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def test_a_promotion_during_traffic_is_picked_up_with_no_failed_request(server, models_dir, tmp_path):
    new = train_model(tmp_path / "data2", models_dir, make_current=False)
    old_version = server.request("GET", "/v1/model")[1]["version"]
    with garden_traffic(server) as (failures, versions):
        time.sleep(1.0)
        promote(models_dir, new.name)
        time.sleep(2.0)
    assert failures == []
    assert versions[0][1] == old_version and versions[-1][1] == new.name
    # Both workers switched: the last answers of each come from the new model.
    final = answers_from_both_workers(server, "/v1/customers/c1/recommendations?n=2", at_least=4)
    assert {body["model_version"] for _, body in final} == {new.name}


def test_metrics_add_up_every_worker(server):
    answers = answers_from_both_workers(server, "/health", at_least=20)
    status, body, _ = server.request("GET", "/metrics")
    assert status == 200
    line = next(row for row in body["text"].splitlines() if row.startswith('recommender_http_requests_total{endpoint="/health"'))
    assert float(line.rsplit(" ", 1)[1]) == len(answers)
    assert body["text"].count("recommender_model_info{") >= 2  # one per live worker


def test_several_promotions_and_a_rollback_during_traffic_fail_no_request(server, models_dir, tmp_path):
    from recommender.artifacts import rollback

    first = server.request("GET", "/v1/model")[1]["version"]
    second = train_model(tmp_path / "data2", models_dir, make_current=False).name
    with garden_traffic(server) as (failures, answers):
        for step in (lambda: promote(models_dir, second), lambda: rollback(models_dir), lambda: promote(models_dir, second)):
            time.sleep(0.6)  # a few of the workers' 0.2 s promotion checks
            step()
        time.sleep(1.0)
    assert failures == []
    seen = {version for _, version in answers}
    assert seen == {first, second}
    final = answers_from_both_workers(server, "/v1/customers/c1/recommendations?n=2", at_least=4)
    assert {body["model_version"] for _, body in final} == {second}
