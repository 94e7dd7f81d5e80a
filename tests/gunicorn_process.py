"""Start a real gunicorn on loopback for a test, talk to it over HTTP, and stop or kill it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[1] / "serving" / "gunicorn.conf.py"


def request(port: int, method: str, path: str, body=None, token: str | None = None, timeout: float = 10) -> tuple[int, bytes]:
    """One request on a fresh connection: (status, raw body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        connection.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def start_gunicorn(port: int, log_path: Path, settings: dict[str, str], workers: int = 2) -> subprocess.Popen:
    """gunicorn in its own process group (so kill -9 can reach master and workers), ready to serve."""
    environment = {
        **os.environ, "RECOMMENDER_BIND": f"127.0.0.1:{port}", "RECOMMENDER_WORKERS": str(workers),
        "RECOMMENDER_SERVED_BY_HEADER": "true", **settings,
    }
    log = open(log_path, "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", str(CONFIG)],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + 30
    ready_workers: set[str] = set()
    while True:
        try:
            # Ready means every worker has loaded its model, not just the first to answer.
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/ready")
            response = connection.getresponse()
            response.read()
            connection.close()
            if response.status == 200:
                ready_workers.add(response.getheader("X-Served-By", ""))
            if len(ready_workers) >= workers:
                return process
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            kill_group(process)
            raise RuntimeError("gunicorn did not become ready:\n" + log_path.read_text(errors="replace")[-3000:])
        time.sleep(0.1)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the master and every worker at once: no shutdown code runs anywhere."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def stop(process: subprocess.Popen) -> None:
    """A graceful stop (SIGTERM to the master), SIGKILL if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            kill_group(process)
