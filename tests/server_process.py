"""Start a real production server on loopback for a test, talk to it over HTTP, and stop or kill it.

The server is the one ``python -m serving.production`` runs: granian by default, gunicorn
with ``server="gunicorn"`` (tests that matter for both are parametrised over ``SERVERS``).
"""

from __future__ import annotations

import http.client
import json
import subprocess
from pathlib import Path

from serving.production import SERVERS, kill, spawn, stop

PRODUCTION_SERVER = SERVERS[0]
__all__ = ["PRODUCTION_SERVER", "SERVERS", "kill_group", "request", "start_server", "stop"]
kill_group = kill


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


def start_server(port: int, log_path: Path, settings: dict[str, str], workers: int = 2, server: str = PRODUCTION_SERVER) -> subprocess.Popen:
    """The server with ``workers`` workers, each of which has loaded its model."""
    return spawn(
        {"RECOMMENDER_BIND": f"127.0.0.1:{port}", "RECOMMENDER_WORKERS": str(workers), "RECOMMENDER_SERVED_BY_HEADER": "true", **settings},
        server=server, log_path=log_path, ready_seconds=30,
    )
