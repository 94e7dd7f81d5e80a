"""Every refusal is JSON with the right status; no input produces a 500."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

RECOMMEND = "/v1/customers/c0/recommendations"


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body


@pytest.mark.parametrize("query", ["n=abc", "n=0", "n=101", "n=1.5", "n=-3", "n=", "n=99999999999999999999", "n=%2B3", "n=%EF%BC%93", "n=%203"])
def test_bad_n_is_400(client, query):
    body = assert_error(client.get(f"{RECOMMEND}?{query}"), 400, "bad_request")
    assert "n must be an integer from 1 to 100" in body["error"]["message"]


@pytest.mark.parametrize("query", ["n=4", "n=004", "n=%34", "n=4&include_purchased=no", "exclude=&n=4", "n=4&"])
def test_n_reads_the_same_with_or_without_werkzeugs_parser(client, query):
    # "n=<digits>" alone takes a short cut past werkzeug's query parser; anything else goes
    # through it. Both must read n the same (the last two add a parameter).
    answer = client.get(f"{RECOMMEND}?{query}").get_json()
    expected = client.get(f"{RECOMMEND}?n=4").get_json()
    assert answer.pop("recommendation_id") != expected.pop("recommendation_id")  # every answer its own id
    assert answer == expected


def test_a_parameter_given_twice_is_400_unless_it_is_a_list(client):
    # "?n=6&n=4" answered six items: werkzeug took the first, and the client may have meant the other.
    body = assert_error(client.get(f"{RECOMMEND}?n=6&n=4"), 400, "bad_request")
    assert body["error"]["message"] == "n is given 2 times; give it once"
    assert_error(client.get(f"{RECOMMEND}?n=2&include_purchased=true&include_purchased=false"), 400, "bad_request")
    listed = client.get(f"{RECOMMEND}?n=10&exclude=a3&exclude=a4").get_json()  # lists may repeat: both left out
    assert listed["items"] and not {"a3", "a4"} & {item["item_id"] for item in listed["items"]}


def test_bad_parameters_are_400(client):
    assert_error(client.get(f"{RECOMMEND}?include_purchased=maybe"), 400)
    assert_error(client.get("/v1/items/a0/similar?n=1000"), 400)
    assert_error(client.get(f"{RECOMMEND}?exclude=" + ",".join(f"x{k}" for k in range(1001))), 400)
    assert_error(client.get(f"{RECOMMEND}?category=" + "x" * 300), 400)


def test_ids_too_long_or_with_control_characters_are_400(client):
    assert_error(client.get(f"/v1/customers/{'x' * 257}/recommendations"), 400)
    assert client.get(f"/v1/customers/{'x' * 256}/recommendations").status_code == 200
    assert_error(client.get("/v1/customers/c%00/recommendations"), 400)
    assert_error(client.get("/v1/items/a%1b0/similar"), 400)
    assert_error(client.post("/v1/events", json={"customer_id": "c\n0", "item_id": "a0"}), 400)


def test_unknown_item_in_similar_is_404(client):
    assert_error(client.get("/v1/items/nope/similar"), 404, "unknown_item")


def test_unknown_route_is_404_and_wrong_method_405(client):
    assert_error(client.get("/v2/anything"), 404, "not_found")
    response = client.put(RECOMMEND)
    assert_error(response, 405, "method_not_allowed")
    # Ids may hold "/", but a DELETE sent to a sub-resource is a mistaken URL, not an erasure of "c0/history".
    for path, allowed in ((RECOMMEND, "GET"), ("/v1/customers/c0/history", "GET"), ("/v1/customers/c0/rank", "POST")):
        refused = client.delete(path)
        assert_error(refused, 405, "method_not_allowed")
        assert refused.headers["Allow"] == allowed
    assert client.get("/v1/customers/c0/history").get_json()["purchases"]  # c0 untouched
    assert "GET" in response.headers["Allow"]
    assert_error(client.get("/v1/events"), 405)


def test_malformed_json_is_400(client):
    response = client.post("/v1/events", data="{not json", content_type="application/json")
    assert_error(response, 400, "malformed_json")


@pytest.mark.parametrize("path", ["/v1/events", "/v1/customers/c0/rank"])
def test_json_nested_too_deeply_is_400_not_500(client, path):
    # 100,000 '[' in 100 kB: the parser's recursion overflows (a RecursionError, not a ValueError).
    response = client.post(path, data='{"items": ' + "[" * 100_000, content_type="application/json")
    body = assert_error(response, 400, "malformed_json")
    assert "nested too deeply" in body["error"]["message"]


def test_a_json_null_body_is_named_for_what_it_is(client):
    events = assert_error(client.post("/v1/events", data="null", content_type="application/json"), 400)
    assert "must be a JSON object" in events["error"]["message"] and "not valid JSON" not in events["error"]["message"]
    rank = assert_error(client.post("/v1/customers/c0/rank", data=" null ", content_type="application/json"), 400)
    assert "must be a JSON object" in rank["error"]["message"]


def test_a_category_no_item_has_is_400_naming_the_known_ones(client):
    body = assert_error(client.get(f"{RECOMMEND}?category=Toys"), 400, "unknown_category")
    assert body["error"]["message"] == "no item has category 'Toys'; known categories: Garden, Kitchen"
    assert client.get(f"{RECOMMEND}?category=garden").status_code == 200  # case does not matter


def test_an_include_list_of_only_unknown_items_is_400_not_an_empty_answer(client):
    body = assert_error(client.get(f"{RECOMMEND}?include=zz1,zz2"), 400, "unknown_items")
    assert body["error"]["message"] == "none of the 2 items to include is known to the model"
    empty = assert_error(client.get(f"{RECOMMEND}?include=,"), 400, "unknown_items")
    assert empty["error"]["message"] == "the list of items to include is empty"
    assert [item["item_id"] for item in client.get(f"{RECOMMEND}?include=zz1,b1").get_json()["items"]] == ["b1"]  # unknown ids ignored


def test_non_json_body_is_415(client):
    assert_error(client.post("/v1/events", data="customer_id=c0", content_type="text/plain"), 415)
    assert_error(client.post("/v1/customers/c0/rank", data="x"), 415)


def test_oversized_body_is_413(make_client):
    client = make_client(MAX_BODY_BYTES=200)
    big = {"events": [{"customer_id": "c0", "item_id": f"a{k}"} for k in range(50)]}
    assert_error(client.post("/v1/events", json=big), 413, "payload_too_large")


def test_a_body_sent_chunked_is_held_to_the_same_limit(make_client):
    """Without Content-Length werkzeug cut the stream at the limit without a word: a long body
    was a 400 "not valid JSON", and a valid one padded with spaces past the limit was stored."""
    client = make_client(MAX_BODY_BYTES=200)

    def post_chunked(body: bytes):
        # As a server passes a chunked body: no CONTENT_LENGTH, the stream ended by the server.
        environ = {"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True}
        return client.post("/v1/events", environ_overrides=environ, headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})

    event = json.dumps({"customer_id": "c0", "item_id": "a3"}).encode()
    assert_error(post_chunked(b"[" * 300), 413, "payload_too_large")
    assert_error(post_chunked(event + b" " * 300), 413, "payload_too_large")
    assert client.get("/v1/customers/c0/history").get_json()["events"] == []
    assert post_chunked(event + b" " * (200 - len(event) - 1)).status_code == 202  # below the limit, chunked or not
    assert post_chunked(event).status_code == 202


@pytest.mark.parametrize(
    "event, word",
    [
        ({"item_id": "a0"}, "customer_id is missing"),
        ({"customer_id": "c0"}, "item_id is missing"),
        ({"customer_id": 7, "item_id": "a0"}, "must be a string"),
        ({"customer_id": "", "item_id": "a0"}, "must not be empty"),
        ({"customer_id": "c0", "item_id": "a0", "quantity": -1}, "quantity"),
        ({"customer_id": "c0", "item_id": "a0", "quantity": "2"}, "quantity"),
        ({"customer_id": "c0", "item_id": "a0", "quantity": True}, "quantity"),
        ({"customer_id": "c0", "item_id": "a0", "event_type": "refund"}, "event_type"),
        ({"customer_id": "c0", "item_id": "a0", "timestamp": "yesterday"}, "timestamp"),
        ({"customer_id": "c0", "item_id": "a0", "timestamp": -5}, "timestamp"),
        ({"customer_id": "c0", "item_id": "a0", "timestamp": "0001-01-01T00:00:00"}, "timestamp"),
        ({"customer_id": "c0", "item_id": "a0", "timestamp": "9999-12-31T00:00:00Z"}, "must be a time from 1970 to now"),
        ({"customer_id": "c0", "item_id": "a0", "timestamp": "5001-01-01T00:00:00Z"}, "5001-01-01T00:00:00Z, in the future"),
        ({"customer_id": "c0", "item_id": "a0", "timestamp": 95617584000}, "in the future"),
        ({"customer_id": "c0", "item_id": "a0", "timestamp": time.time() + 2 * 86_400}, "in the future"),
    ],
)
def test_bad_events_are_400_and_say_why(client, event, word):
    body = assert_error(client.post("/v1/events", json=event), 400)
    assert word in body["error"]["message"]


@pytest.mark.parametrize("path", ["/v1/customers/\xff/recommendations", "/v1/customers/a\xc3/history", "/v1/items/\xfe\xff/similar"])
def test_a_path_of_invalid_utf8_is_400_not_a_customer_named_by_the_replacement_character(client, path):
    # WSGI gives the path's bytes as latin-1 text; werkzeug would decode these to U+FFFD, so
    # every undecodable id answered as one customer. (The test client itself replaces
    # undecodable %XX escapes, so the raw path is set here as a server passes it.)
    body = assert_error(client.get("/health", environ_overrides={"PATH_INFO": path}), 400)
    assert "not valid UTF-8" in body["error"]["message"]


def test_an_id_spelled_with_a_real_replacement_character_is_an_id_like_any_other(client):
    assert client.get("/v1/customers/M%EF%BF%BDller/recommendations").status_code == 200  # U+FFFD, validly encoded


@pytest.mark.parametrize("field", ["customer_id", "item_id", "recommendation_id"])
def test_a_lone_surrogate_in_an_id_is_400_not_500(client, field):
    event = {"customer_id": "c0", "item_id": "a0", field: "c\ud800"}
    response = client.post("/v1/events", data=json.dumps(event), content_type="application/json")  # json.dumps escapes it
    body = assert_error(response, 400)
    assert "lone surrogate" in body["error"]["message"]


@pytest.mark.parametrize("field", ["quantity", "timestamp"])
def test_an_integer_too_large_for_a_float_is_400_not_500(client, field):
    response = client.post("/v1/events", data='{"customer_id": "c0", "item_id": "a0", "' + field + '": ' + "9" * 400 + "}",
                           content_type="application/json")
    assert_error(response, 400)


def test_an_event_a_little_ahead_of_the_servers_clock_is_taken(client):
    # A client's clock that is a few hours fast, or a local time sent without its offset.
    event = {"customer_id": "c0", "item_id": "a0", "timestamp": int(time.time()) + 14 * 3600}
    assert client.post("/v1/events", json=event).status_code == 202


def test_ids_of_spaces_alone_are_400_as_in_files(client):
    for event in ({"customer_id": "   ", "item_id": "a0"}, {"customer_id": "c0", "item_id": " "}):
        field = "customer_id" if event["customer_id"].isspace() else "item_id"
        body = assert_error(client.post("/v1/events", json=event), 400, "bad_request")
        assert body["error"]["message"] == f"event.{field} is only spaces"
    assert assert_error(client.get("/v1/customers/%20%20/recommendations?n=2"), 400, "bad_request")["error"]["message"] == "customer_id is only spaces"
    assert client.post("/v1/events", json={"customer_id": " c0 ", "item_id": "a0"}).status_code == 202  # spaces around an id: an id


def test_a_time_in_milliseconds_and_a_batch_under_event_say_what_was_meant(client):
    # JavaScript's Date.now() gives milliseconds; {"event": [...]} is a batch missing its "s".
    body = assert_error(client.post("/v1/events", json={"customer_id": "c0", "item_id": "a0", "timestamp": 1764900000000}), 400, "bad_request")
    assert body["error"]["message"].endswith("(1764900000000 looks like milliseconds, as JavaScript's Date.now() gives: send 1764900000)")
    body = assert_error(client.post("/v1/events", json={"event": [{"customer_id": "c0", "item_id": "a0"}]}), 400, "unknown_field")
    assert body["error"]["message"].startswith("event.event is not a field of an event") and body["error"]["message"].endswith('; a batch is {"events": [...]}')


def test_a_misspelt_event_field_is_400_not_a_purchase(client):
    # Ignored, "evnt_type": "view" stored a purchase (the type's default): training weighs it fully.
    body = assert_error(client.post("/v1/events", json={"customer_id": "c0", "item_id": "a3", "evnt_type": "view"}), 400, "unknown_field")
    assert body["error"]["message"].startswith("event.evnt_type is not a field of an event; the fields are customer_id, item_id, event_type")
    batch = {"events": [{"customer_id": "c0", "item_id": "a3"}, {"customer_id": "c0", "item_id": "a4", "qty": 2}]}
    assert "events[1].qty is not a field" in assert_error(client.post("/v1/events", json=batch), 400, "unknown_field")["error"]["message"]
    beside = {"events": [{"customer_id": "c0", "item_id": "a3"}], "customer_id": "c0"}
    assert "customer_id is not a field of a batch" in assert_error(client.post("/v1/events", json=beside), 400, "unknown_field")["error"]["message"]
    assert_error(client.post("/v1/events", json={"customer_id": "c0", "item_id": "a3", "c\ud800": 1}), 400, "unknown_field")
    assert client.get("/v1/customers/c0/history").get_json()["events"] == []  # nothing of any of them stored


def test_bad_batches_store_nothing(client):
    assert_error(client.post("/v1/events", json={"events": []}), 400)
    assert_error(client.post("/v1/events", json={"events": "c0"}), 400)
    assert_error(client.post("/v1/events", json=[1, 2]), 400)
    too_many = {"events": [{"customer_id": "c0", "item_id": "a0"}] * 1001}
    assert_error(client.post("/v1/events", json=too_many), 400)
    half_bad = {"events": [{"customer_id": "c0", "item_id": "a3"}, {"customer_id": "c0"}]}
    body = assert_error(client.post("/v1/events", json=half_bad), 400)
    assert "events[1].item_id is missing" in body["error"]["message"]
    assert client.get("/v1/customers/c0/history").get_json()["events"] == []


def test_bad_rank_bodies_are_400(client):
    assert_error(client.post("/v1/customers/c0/rank", json={}), 400, "missing_field")
    assert_error(client.post("/v1/customers/c0/rank", json={"items": []}), 400)
    assert_error(client.post("/v1/customers/c0/rank", json={"items": "a0"}), 400)
    assert_error(client.post("/v1/customers/c0/rank", json={"items": [1, 2]}), 400)
    assert_error(client.post("/v1/customers/c0/rank", json={"items": ["a0"] * 1001}), 400)


def test_write_endpoints_need_the_api_token(make_client):
    client = make_client(API_TOKEN="s3cret")
    event = {"customer_id": "c0", "item_id": "a3"}
    response = client.post("/v1/events", json=event)
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_error(client.post("/v1/events", json=event, headers={"Authorization": "Bearer wrong"}), 401)
    assert_error(client.post("/v1/events", json=event, headers={"Authorization": "Basic s3cret"}), 401)
    assert_error(client.post("/v1/admin/reload"), 401)
    assert client.post("/v1/events", json=event, headers={"Authorization": "Bearer s3cret"}).status_code == 202
    assert client.post("/v1/admin/reload", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get(RECOMMEND).status_code == 200  # reads stay open without a read token


def test_read_token_guards_reading_endpoints(make_client):
    client = make_client(READ_TOKEN="reader", API_TOKEN="writer")
    for url in (RECOMMEND, "/v1/items/a0/similar", "/v1/customers/c0/history", "/v1/model"):
        assert_error(client.get(url), 401)
        assert client.get(url, headers={"Authorization": "Bearer reader"}).status_code == 200
        assert client.get(url, headers={"Authorization": "Bearer writer"}).status_code == 200
    assert_error(client.post("/v1/customers/c0/rank", json={"items": ["a0"]}), 401)
    for url in ("/health", "/ready", "/metrics", "/openapi.json"):
        assert client.get(url).status_code == 200


def test_an_event_store_that_cannot_signal_other_workers_is_503_and_stores_nothing(make_client, app_config):
    Path(app_config["EVENTS_DB"] + "-signal").mkdir()  # the other workers' signal cannot be written
    client = make_client()
    response = client.post("/v1/events", json={"customer_id": "c0", "item_id": "a3"})
    assert_error(response, 503, "event_store_unavailable")
    assert response.headers["Retry-After"] == "1"
    assert client.get("/v1/customers/c0/history").get_json()["events"] == []


def test_no_model_means_503_not_500(make_client, tmp_path):
    client = make_client(MODEL_PATH=str(tmp_path / "missing"))
    assert client.get("/health").status_code == 200
    assert_error(client.get("/ready"), 503, "model_unavailable")
    assert_error(client.get(RECOMMEND), 503, "model_unavailable")
    assert_error(client.get("/v1/items/a0/similar"), 503)
    reload = assert_error(client.post("/v1/admin/reload"), 409, "reload_failed")["error"]["message"]
    assert reload.startswith("the model could not be loaded, no model is served yet: ") and "None" not in reload


def test_a_real_bug_is_a_json_500_without_traceback(app, client, monkeypatch):
    model = app.extensions["recommender"].models.current()

    def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(model, "recommend", broken)
    response = client.get(RECOMMEND)
    body = assert_error(response, 500, "internal_error")
    assert "secret" not in response.get_data(as_text=True) and "Traceback" not in response.get_data(as_text=True)
    assert body["error"]["message"].startswith("internal server error")


# Lone surrogates (category Cs) cannot be encoded into a URL at all, so no client can send them.
text_without_slash = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/?#%"), min_size=1, max_size=300)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(customer=text_without_slash, n=st.text(max_size=12), flag=st.text(max_size=8), exclude=st.text(max_size=40))
def test_no_query_produces_a_server_error(client, customer, n, flag, exclude):
    # Percent-encoded as every HTTP client sends it (a raw line feed cannot be in a request line).
    response = client.get(f"/v1/customers/{quote(customer, safe='')}/recommendations", query_string={"n": n, "include_purchased": flag, "exclude": exclude})
    assert response.status_code in (200, 400, 404), response.get_data(as_text=True)
    assert "error" in response.get_json() or response.status_code == 200


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20), lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["customer_id", "item_id", "quantity", "timestamp", "event_type", "events", "items"]), inner, max_size=5), max_leaves=12))
def test_no_json_body_produces_a_server_error(client, body):
    for url in ("/v1/events", "/v1/customers/c0/rank"):
        response = client.post(url, data=json.dumps(body), content_type="application/json")
        assert response.status_code in (200, 202, 400), (url, body, response.get_data(as_text=True))
