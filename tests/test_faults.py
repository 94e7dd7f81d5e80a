"""Faults with real processes: kill -9 of the production server mid-stream, SIGKILL of training, damaged models.

- Every event answered 202 before the server's master and workers were SIGKILLed is in
  the SQLite store after a restart, and the store passes ``PRAGMA integrity_check``; a
  client that then retries every request left unanswered, with the same idempotency keys,
  has every event it sent stored exactly once.
- A training run SIGKILLed while fitting or while writing its folder leaves
  ``models/current`` and every published version intact, and lists no half folder.
- A truncated, modified or missing artifact file is refused with a sentence naming the
  file; a running server keeps serving the model it had.
"""

from __future__ import annotations

import http.client
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from recommender.artifacts import CURRENT, list_models, load_model, promote, verify_checksums
from recommender.demo import generate_store, write_store
from recommender.errors import ArtifactError
from tests.conftest import free_port, train_model
from tests.server_process import kill_group, request, start_server, stop

pytestmark = pytest.mark.slow
WRITERS = 4
STREAM_SECONDS = 1.5


class EventStream:
    """Writer threads posting uniquely named events; records which got a 202 and which got no answer."""

    def __init__(self, port: int, prefix: str):
        self.port, self.prefix = port, prefix
        self.acknowledged: set[str] = set()
        self.unanswered: set[str] = set()  # sent, then the connection died: stored or not, both are fine
        self.refused: list = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._write, args=(k,)) for k in range(WRITERS)]

    def _write(self, writer: int) -> None:
        sequence = 0
        while not self.stopping.is_set():
            sequence += 1
            # A batch of two every third request: a batch is one transaction, stored whole or not at all.
            customers = [f"{self.prefix}-{writer}-{sequence}-{j}" for j in range(2 if sequence % 3 == 0 else 1)]
            body = {"events": [{"customer_id": c, "item_id": "a0", "idempotency_key": f"key-{c}"} for c in customers]}
            try:
                status, raw = request(self.port, "POST", "/v1/events", body, timeout=5)
            except ConnectionRefusedError:  # nothing listens: the request was never sent
                time.sleep(0.01)
                continue
            except (OSError, http.client.HTTPException):  # killed mid-request or mid-reply (IncompleteRead)
                with self.lock:
                    self.unanswered.update(customers)
                time.sleep(0.01)
                continue
            with self.lock:
                if status == 202 and json.loads(raw) == {"stored": len(customers), "already_stored": 0}:
                    self.acknowledged.update(customers)
                else:
                    self.refused.append((status, raw[:200]))

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for thread in self.threads:
            thread.join()


def stored_customers(database: Path) -> tuple[list[str], str]:
    connection = sqlite3.connect(database)
    try:
        customers = [row[0] for row in connection.execute("SELECT customer_id FROM events")]
        integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        connection.close()
    return customers, integrity


def test_kill_minus_9_of_the_server_loses_no_acknowledged_event(trained_models, tmp_path):
    database = tmp_path / "events.sqlite3"
    settings = {"RECOMMENDER_MODEL_PATH": str(trained_models / CURRENT), "RECOMMENDER_EVENTS_DB": str(database), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    acknowledged, unanswered = set(), set()
    for cycle in range(2):  # kill, restart, kill again: recovery from a crashed WAL works twice
        port = free_port()
        server = start_server(port, tmp_path / "server.log", settings)
        with EventStream(port, f"cycle{cycle}") as stream:
            time.sleep(STREAM_SECONDS)
            kill_group(server)  # master and workers, mid-stream, no shutdown code runs
            time.sleep(0.3)  # writers see refused connections: those events are not acknowledged
        assert stream.refused == [], (tmp_path / "server.log").read_text()[-3000:]  # the server's side of a refusal
        assert len(stream.acknowledged) > 50, "the stream was too slow to test anything"
        acknowledged |= stream.acknowledged
        unanswered |= stream.unanswered
    port = free_port()
    server = start_server(port, tmp_path / "server.log", settings)  # the store opens after the crash
    customers, integrity = stored_customers(database)
    stored = set(customers)
    assert integrity == "ok"
    assert len(customers) == len(stored), "an event was stored twice"
    assert acknowledged <= stored, f"{len(acknowledged - stored)} acknowledged events were lost"
    # Anything stored beyond the acknowledged was in flight when the server died (committed, answer lost).
    assert stored - acknowledged <= unanswered
    # The client retries what got no answer, with the same keys: what was committed is not stored again.
    retried = [request(port, "POST", "/v1/events", {"customer_id": c, "item_id": "a0", "idempotency_key": f"key-{c}"}) for c in sorted(unanswered)]
    replies = [json.loads(raw) for status, raw in retried if status == 202]
    assert len(replies) == len(unanswered)
    assert sum(reply["already_stored"] for reply in replies) == len(unanswered & stored)
    stop(server)
    after_retries, integrity = stored_customers(database)
    assert integrity == "ok" and sorted(after_retries) == sorted(acknowledged | unanswered), "every event sent is stored exactly once"
    print(f"\nacknowledged {len(acknowledged)}, stored {len(stored)}, in flight at the kills {len(unanswered)} "
          f"(of which committed {len(unanswered & stored)}), integrity {integrity}; after the retries {len(after_retries)}")


def write_training_data(folder: Path) -> Path:
    # Big enough that fitting and writing take a noticeable moment on 2 cores.
    return write_store(generate_store(customers=6000, items=1500, purchases=150_000, seed=3), folder)["purchases"]


def snapshot(models_dir: Path) -> tuple[str, list[str]]:
    return (models_dir / CURRENT).resolve().name, [m["version"] for m in list_models(models_dir)]


def assert_models_intact(models_dir: Path, before: tuple[str, list[str]]) -> None:
    assert snapshot(models_dir) == before
    for version in before[1]:
        folder = models_dir / version
        verify_checksums(folder, json.loads((folder / "manifest.json").read_text()))
    load_model(models_dir / CURRENT)


@pytest.mark.parametrize("moment", ["while fitting", "while writing the model folder"])
def test_training_killed_halfway_leaves_published_models_intact(models_dir, tmp_path, moment):
    data = write_training_data(tmp_path / "data")
    before = snapshot(models_dir)
    command = [sys.executable, "-m", "training", "--quiet", "--threads", "1", "train", "--data", str(data), "--models-dir", str(models_dir), "--promote"]
    if moment == "while fitting":
        # So many BPR epochs that the run is certainly still fitting when the kill comes.
        command += ["--algorithm", "bpr", "--param", "iterations=100000"]
    else:
        command += ["--algorithm", "als"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    started, killed_while_writing = time.monotonic(), False
    while process.poll() is None and time.monotonic() - started < 60:
        staging = list(models_dir.glob(".incoming-*"))
        if moment == "while writing the model folder" and staging:
            killed_while_writing = True
            break
        if moment == "while fitting" and time.monotonic() - started > 3.0:
            break
        time.sleep(0.002)
    assert process.poll() is None, "training ended before it could be killed: " + process.stderr.read().decode()[-500:]
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    if moment == "while writing the model folder":
        assert killed_while_writing
    assert_models_intact(models_dir, before)


def damage(folder: Path, how: str) -> str:
    target = folder / "item_ids.npy"
    if how == "truncated":
        target.write_bytes(target.read_bytes()[:-10])
        return "checksum mismatch"
    if how == "modified":
        content = bytearray(target.read_bytes())
        content[-1] ^= 0x01
        target.write_bytes(bytes(content))
        return "checksum mismatch"
    if how == "missing":
        target.unlink()
        return "file listed in the manifest is missing"
    (folder / "manifest.json").unlink()
    return "manifest.json is missing"


@pytest.mark.parametrize("how", ["truncated", "modified", "missing", "no manifest"])
def test_a_damaged_model_is_refused_with_a_clear_error(models_dir, tmp_path, how):
    fresh = train_model(tmp_path / "data2", models_dir, make_current=False)
    expected = damage(fresh, how)
    with pytest.raises(ArtifactError, match=expected) as refused:
        load_model(fresh)
    assert str(fresh) in str(refused.value)
    with pytest.raises(ArtifactError):
        promote(models_dir, fresh.name)  # promote() verifies before it switches
    assert (models_dir / CURRENT).resolve().name != fresh.name


def test_a_running_server_keeps_its_model_when_damaged_ones_are_pointed_at(models_dir, tmp_path):
    port = free_port()
    settings = {
        "RECOMMENDER_MODEL_PATH": str(models_dir / CURRENT),
        "RECOMMENDER_EVENTS_DB": str(tmp_path / "events.sqlite3"),
        "RECOMMENDER_MODEL_CHECK_SECONDS": "0.1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    server = start_server(port, tmp_path / "server.log", settings)
    try:
        old = json.loads(request(port, "GET", "/v1/model")[1])["version"]
        for k, how in enumerate(["truncated", "modified", "missing"]):
            broken = train_model(tmp_path / f"data{k}", models_dir, make_current=False)
            damage(broken, how)
            link = models_dir / f".current-test-{k}"
            link.symlink_to(broken.name)  # what a careless deploy script might do; promote() would refuse
            link.replace(models_dir / CURRENT)
            time.sleep(0.3)  # past the workers' promotion checks
            for _ in range(10):  # both workers answer, with the old model
                status, raw = request(port, "GET", "/v1/customers/c0/recommendations?n=2")
                assert status == 200 and json.loads(raw)["model_version"] == old
                assert json.loads(request(port, "GET", "/v1/model")[1])["version"] == old
            status, raw = request(port, "POST", "/v1/admin/reload")
            error = json.loads(raw)["error"]
            assert status == 409 and error["code"] == "reload_failed" and f"still serving {old}" in error["message"]
    finally:
        stop(server)
    assert "Traceback" not in (tmp_path / "server.log").read_text()


def _serve_one_stuck_request() -> None:
    from serving.granian_worker import RequestWatchdog

    def stuck_app(environ, start_response):
        time.sleep(60)  # a request that never finishes

    RequestWatchdog(stuck_app, timeout=0.5)({}, None)


def test_a_granian_worker_stuck_in_a_request_exits_so_it_is_replaced():
    """gunicorn kills a worker stuck past its timeout; granian has no timeout, so each of
    its workers watches its own requests and exits (granian then starts another)."""
    import multiprocessing

    worker = multiprocessing.get_context("fork").Process(target=_serve_one_stuck_request)
    started = time.monotonic()
    worker.start()
    worker.join(20)
    assert worker.exitcode == 70 and time.monotonic() - started < 10
