"""The HTTP API fuzzed from its own OpenAPI document (schemathesis + hypothesis).

For every operation in /openapi.json, schemathesis generates requests that follow
the document (positive) and requests that break it (negative), and sends them to the
real Flask app in-process (WSGI). Each answer must be no 500, come back quickly, match
the documented status codes, content type and response schema, and every error must
have the documented shape ``{"error": {"code", "message"}}``. Negative requests must
be refused (4xx).

Two servers are fuzzed: an open one (no tokens) and a locked one (API and read
tokens set), where the document says which operations need a token; there, valid
requests carry the read/API token and invalid ones carry none and must get 401.
"""

from __future__ import annotations

import json
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from serving import create_app
from serving.openapi import openapi_document
from tests.test_experiments import HOMEPAGE

pytestmark = pytest.mark.slow
# Per operation and mode; with 13 operations, 2 modes (negative only where there is
# something to break) and two servers this sends about 3,000 requests in under a minute.
EXAMPLES = {"open": 120, "locked": 40}
SLOWEST_ANSWER_SECONDS = 5.0
API_TOKEN, READ_TOKEN = "fuzz-api-token-7f3a", "fuzz-read-token-91cd"
CHECKS = {
    GenerationMode.POSITIVE: [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    GenerationMode.NEGATIVE: [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        negative_data_rejection,
    ],
}


def _cases() -> list:
    cases = []
    for path, methods in openapi_document()["paths"].items():
        for method, spec in methods.items():
            for server in EXAMPLES:
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    # Negative mode breaks parameters, bodies and required tokens; some operations have none.
                    breakable = spec.get("parameters") or spec.get("requestBody") or (server == "locked" and path.startswith("/v1"))
                    if mode is GenerationMode.POSITIVE or breakable:
                        cases.append(pytest.param(server, path, method.upper(), mode, id=f"{server} {method.upper()} {path} {mode.value}"))
    return cases


@pytest.fixture(scope="module")
def api_schemas(trained_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    # An experiment runs, so answers carry a variant and /v1/experiments lists figures to check against the schema.
    (folder / "experiments.json").write_text(json.dumps({"experiments": [HOMEPAGE]}))
    settings_by_server = {"open": {}, "locked": {"API_TOKEN": API_TOKEN, "READ_TOKEN": READ_TOKEN}}
    schemas = {}
    for server, extra in settings_by_server.items():
        app = create_app({"MODEL_PATH": str(trained_models / "current"), "EVENTS_DB": str(folder / f"{server}.sqlite3"),
                          "EXPERIMENTS": str(folder / "experiments.json"), **extra})
        schemas[server] = schemathesis.openapi.from_wsgi("/openapi.json", app)
    return schemas


def assert_documented_error_shape(response) -> None:
    if response.status_code < 400:
        return
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"} and all(isinstance(v, str) and v for v in body["error"].values()), body


@pytest.mark.parametrize("server, path, method, mode", _cases())
def test_generated_requests_get_documented_answers(api_schemas, server, path, method, mode):
    operation = api_schemas[server][path][method]
    # On the locked server valid requests carry the API token (it also opens the reads);
    # invalid ones carry none, so a missing token is one of the things they must be refused for.
    headers = {"Authorization": f"Bearer {API_TOKEN}"} if server == "locked" and mode is GenerationMode.POSITIVE else None

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES[server], deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def exercise(case):
        started = time.perf_counter()
        response = case.call(headers=headers)
        assert time.perf_counter() - started < SLOWEST_ANSWER_SECONDS, "the answer took too long"
        case.validate_response(response, checks=CHECKS[mode], headers=headers)
        assert_documented_error_shape(response)
        if server == "locked" and mode is GenerationMode.NEGATIVE and path.startswith("/v1"):
            assert response.status_code in (400, 401, 404, 405, 413, 415), response.status_code

    exercise()
