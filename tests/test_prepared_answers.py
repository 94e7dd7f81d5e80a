"""Plain top-list answers kept encoded (serving/prepared.py): the same replies as building them,
never after feedback, a new model or an erasure, every answer still logged, and the byte bound."""

from __future__ import annotations

import json

import pytest

from serving import create_app
from serving.prepared import PreparedAnswers
from serving.state import served_model
from tests.conftest import bought_by, train_model

CUSTOMERS = [f"c{k}" for k in range(6)] + [f"d{k}" for k in range(6)]


@pytest.fixture
def app_config(tmp_path) -> dict:
    """The two-group store's model with its top lists (as ``recommender train`` keeps them)."""
    train_model(tmp_path / "data", tmp_path / "models", top_lists=5)
    return {"MODEL_PATH": str(tmp_path / "models" / "current"), "EVENTS_DB": str(tmp_path / "events.sqlite3")}


def body(client, path: str) -> dict:
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = json.loads(response.get_data())
    answer.pop("recommendation_id")
    return answer


@pytest.fixture
def clients(app_config):
    """A client of an app that keeps answers encoded, one of an app that never does, and the first app."""
    kept = create_app(app_config)
    never = create_app({**app_config, "PREPARED_ANSWERS_MB": 0})
    return kept.test_client(), never.test_client(), kept


def test_kept_answers_equal_answers_built_each_time(clients):
    kept, never, app = clients
    for n in (1, 3, 10):
        for customer in CUSTOMERS:
            path = f"/v1/customers/{customer}/recommendations?n={n}"
            built = body(never, path)
            assert body(kept, path) == built  # made and kept
            assert body(kept, path) == built  # from what was kept
            assert built["items"] and built["source"] == "personalised"
    prepared = app.extensions["recommender"].prepared
    assert prepared.kept == prepared.encoded == 3 * len(CUSTOMERS)  # one per customer and n, no more
    metrics = kept.get("/metrics").get_data(as_text=True)
    assert f"recommender_prepared_answers_encoded_total {3 * len(CUSTOMERS)}.0" in metrics
    assert f'recommender_answer_origins_total{{origin="top_lists"}} {6 * len(CUSTOMERS)}.0' in metrics


def test_a_filter_or_feedback_takes_the_ordinary_path(clients):
    kept, never, app = clients
    path = "/v1/customers/c1/recommendations?n=3"
    first = body(kept, path)["items"][0]["item_id"]
    assert first not in bought_by("c1")
    filtered = body(kept, f"{path}&exclude={first}")
    assert first not in [item["item_id"] for item in filtered["items"]]
    for client in (kept, never):
        assert client.post("/v1/events", json={"customer_id": "c1", "item_id": first}).status_code == 202
    after = body(kept, path)
    assert first not in [item["item_id"] for item in after["items"]]  # the purchase counts at once
    assert after == body(never, path)
    assert app.extensions["recommender"].prepared.kept == 1  # the plain answer before the purchase only


def test_every_answer_is_logged_with_its_items_when_it_was_kept(clients):
    kept, _, app = clients
    state = app.extensions["recommender"]
    ids = []
    for _ in range(3):
        response = kept.get("/v1/customers/c2/recommendations?n=4").get_json()
        ids.append((response["recommendation_id"], tuple(item["item_id"] for item in response["items"])))
    state.answer_log.flush()
    for recommendation_id, items in ids:
        logged = state.events.answer(recommendation_id)
        assert logged is not None and tuple(logged.items) == items and logged.customer_id == "c2"
    assert len({recommendation_id for recommendation_id, _ in ids}) == 3


def test_an_erasure_drops_the_customers_kept_answers(clients):
    kept, _, app = clients
    prepared = app.extensions["recommender"].prepared
    body(kept, "/v1/customers/c3/recommendations?n=3")
    body(kept, "/v1/customers/c4/recommendations?n=3")
    assert prepared.kept == 2
    assert kept.delete("/v1/customers/c3").status_code == 200
    assert prepared.kept == 1  # c4's stays
    answer = body(kept, "/v1/customers/c3/recommendations?n=3")
    assert answer["source"] == "popular" and prepared.kept == 1  # answered as a stranger, not kept


def test_a_new_model_version_never_gets_the_old_ones_answers(app_config):
    app = create_app(app_config)
    model = served_model(app.extensions["recommender"])
    encoded = []
    prepared = PreparedAnswers(10**6, lambda items: encoded.append(len(items)) or b"[]")
    prepared.answer(model, "c1", 3, True)
    prepared.answer(model, "c1", 3, True)
    model.manifest["version"] = "another-version"  # what a promoted folder would carry
    prepared.answer(model, "c1", 3, True)
    assert len(encoded) == 2 and prepared.kept == 2


def test_the_bytes_kept_stay_within_the_bound_least_recently_asked_first(app_config):
    app = create_app(app_config)
    model = served_model(app.extensions["recommender"])
    prepared = PreparedAnswers(3 * (1000 + 400), lambda items: b"x" * 1000)  # room for three answers
    for customer in ("c0", "c1", "c2", "c0", "c3"):  # c0 asked again before c3 comes: c1 goes
        prepared.answer(model, customer, 3, True)
    assert prepared.kept == 3 and prepared.bytes_kept <= prepared.max_bytes
    before = prepared.encoded
    prepared.answer(model, "c0", 3, True)
    assert prepared.encoded == before  # still kept
    prepared.answer(model, "c1", 3, True)
    assert prepared.encoded == before + 1  # made again
    assert PreparedAnswers(0, lambda items: b"[]").answer(model, "c0", 3, True).items  # off: built each time
