"""No token ever leaves the server: not in logs, error replies, /metrics or any answer.

A real server (granian and gunicorn, two workers each, access log on, debug logging) gets authorised and
unauthorised requests, including ones that send a token where it does not belong
(a wrong scheme, the read token on a write, the token in the query string); then its
whole log, /metrics and every reply are searched for the token strings.
"""

from __future__ import annotations

import http.client

import pytest

from recommender.artifacts import CURRENT, current_version
from tests.conftest import free_port
from tests.server_process import SERVERS, start_server, stop

pytestmark = pytest.mark.slow
API_TOKEN = "api-SECRET-5d1e2f0c9a8b"
READ_TOKEN = "read-SECRET-77aa01bc3e4d"
# A wrong token a caller sent is a secret too (it may be a real token for another system).
WRONG_TOKEN = "wrong-SECRET-0f9e8d7c6b5a"
SECRETS = (API_TOKEN, READ_TOKEN, WRONG_TOKEN, "SECRET")


def raw_exchange(port: int, method: str, path: str, headers: dict, body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body, headers)
        response = connection.getresponse()
        return response.status, b"".join(f"{k}: {v}\n".encode() for k, v in response.getheaders()) + response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("server_name", SERVERS)
def test_tokens_never_appear_in_logs_metrics_or_replies(trained_models, tmp_path, server_name):
    log = tmp_path / "server.log"
    port = free_port()
    settings = {
        "RECOMMENDER_MODEL_PATH": str(trained_models / CURRENT),
        "RECOMMENDER_EVENTS_DB": str(tmp_path / "events.sqlite3"),
        "RECOMMENDER_API_TOKEN": API_TOKEN,
        "RECOMMENDER_READ_TOKEN": READ_TOKEN,
        "RECOMMENDER_ACCESS_LOG": "-",
        "RECOMMENDER_LOG_LEVEL": "debug",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    server = start_server(port, log, settings, server=server_name)
    event = b'{"customer_id": "c0", "item_id": "a3"}'
    json_type = {"Content-Type": "application/json"}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    version = current_version(trained_models)
    exchanges = [
        # (method, path, headers, body, expected status)
        ("GET", "/v1/customers/c0/recommendations", {"Authorization": f"Bearer {READ_TOKEN}"}, None, 200),
        ("GET", "/v1/customers/c0/recommendations", {"Authorization": f"Bearer {API_TOKEN}"}, None, 200),
        ("GET", "/v1/customers/c0/recommendations", {"Authorization": f"Bearer {WRONG_TOKEN}"}, None, 401),
        ("GET", "/v1/customers/c0/recommendations", {"Authorization": f"Basic {READ_TOKEN}"}, None, 401),
        ("GET", "/v1/customers/c0/recommendations", {}, None, 401),
        # A token in the query is no way in: refused as a parameter the route does not take (by name, never by value).
        ("GET", f"/v1/customers/c0/history?token={WRONG_TOKEN}", {}, None, 400),
        ("GET", f"/v1/customers/c0/history?token={READ_TOKEN}", {}, None, 400),
        ("GET", "/v1/model", {"Authorization": f"Bearer {READ_TOKEN}"}, None, 200),
        ("POST", "/v1/events", {**json_type, "Authorization": f"Bearer {API_TOKEN}"}, event, 202),
        ("POST", "/v1/events", {**json_type, "Authorization": f"Bearer {READ_TOKEN}"}, event, 401),
        ("POST", "/v1/events", {**json_type, "Authorization": f"Bearer {WRONG_TOKEN}"}, event, 401),
        ("POST", "/v1/events", {**json_type, "Authorization": f"Bearer {API_TOKEN}"}, b"{broken", 400),
        ("POST", "/v1/events", {**json_type, "Authorization": f"Bearer {API_TOKEN}"}, f'{{"customer_id": "{WRONG_TOKEN}\\u0000"}}'.encode(), 400),
        ("POST", "/v1/admin/reload", {"Authorization": f"Bearer {API_TOKEN}"}, None, 200),
        ("POST", "/v1/admin/reload", {"Authorization": f"Bearer {WRONG_TOKEN}"}, None, 401),
        ("GET", "/v1/nowhere", {"Authorization": f"Bearer {API_TOKEN}"}, None, 404),
        # The dashboard's sign-in form takes the token in a POST body; its cookie holds only a check of it.
        ("POST", "/dashboard/login", form, f"token={WRONG_TOKEN}".encode(), 401),
        ("POST", "/dashboard/login", form, f"token={READ_TOKEN}".encode(), 303),
        ("GET", "/dashboard/", {"Authorization": f"Bearer {READ_TOKEN}"}, None, 200),
        ("GET", "/dashboard/", {"Authorization": f"Bearer {WRONG_TOKEN}"}, None, 401),
        ("POST", "/dashboard/models/promote", {**form, "Authorization": f"Bearer {READ_TOKEN}"}, f"version={version}&token={WRONG_TOKEN}".encode(), 401),
        ("GET", "/openapi.json", {}, None, 200),
        ("GET", "/ready", {}, None, 200),
        ("GET", "/metrics", {}, None, 200),
    ]
    replies = []
    try:
        for method, path, headers, body, expected in exchanges:
            status, reply = raw_exchange(port, method, path, headers, body)
            assert status == expected, (method, path, status, reply[-300:])
            replies.append(reply)
        replies.append(raw_exchange(port, "GET", "/metrics", {})[1])
    finally:
        stop(server)
    texts = {"server log": log.read_text(errors="replace"), "replies": b"\n".join(replies).decode(errors="replace")}
    assert " 202 " in texts["server log"] and " 401 " in texts["server log"]  # the access log did record them
    for where, text in texts.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} appears in the {where}"
