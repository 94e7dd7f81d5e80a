"""Closing the loop through the Flask client: traced answers, feedback events, "not
interested", experiments and their errors, /metrics, on the two-group known-answer model."""

from __future__ import annotations

import json

import pytest
from markupsafe import escape

from recommender.events import AnswerRecord, Event, EventStore
from recommender.experiments import assign, parse_experiments
from recommender.experiments.attribution import attribute
from serving import create_app
from serving.config import ConfigError
from serving.state import EXTENSION
from tests.conftest import GARDEN, bought_by, train_model, write_two_group_store
from tests.test_experiments import HOMEPAGE


def ids(body: dict) -> list[str]:
    return [item["item_id"] for item in body["items"]]


def logged(app, recommendation_id: str):
    state = app.extensions[EXTENSION]
    state.answer_log.flush()
    return state.events.answer(recommendation_id)


# -- tracing --------------------------------------------------------------------------------
def test_every_answer_carries_an_id_positions_and_is_logged(app, client):
    answers = [
        ("recommendations", client.get("/v1/customers/c0/recommendations?n=2").get_json()),
        ("rank", client.post("/v1/customers/c0/rank", json={"items": ["b0", "a4", "zz"]}).get_json()),
        ("similar", client.get("/v1/items/a0/similar?n=3").get_json()),
    ]
    seen = set()
    for endpoint, body in answers:
        assert body["experiment"] is None and body["variant"] is None
        assert [item["position"] for item in body["items"]] == list(range(1, len(body["items"]) + 1))
        record = logged(app, body["recommendation_id"])
        assert record.endpoint == endpoint and record.items == tuple(ids(body)) and record.model_version == body["model_version"]
        assert record.customer_id == (None if endpoint == "similar" else "c0")
        seen.add(body["recommendation_id"])
    assert len(seen) == 3
    assert ids(answers[1][1])[-1] == "zz"  # unknown candidates still last, with their position


def test_similar_items_for_a_customer_are_logged_as_theirs(app, client):
    body = client.get("/v1/items/a0/similar?n=2&customer_id=c0").get_json()
    assert body["customer_id"] == "c0" and logged(app, body["recommendation_id"]).customer_id == "c0"


# -- feedback events ------------------------------------------------------------------------
def test_feedback_types_are_stored_with_their_recommendation_id(client):
    answer = client.get("/v1/customers/c0/recommendations?n=2").get_json()
    rid, first = answer["recommendation_id"], answer["items"][0]["item_id"]
    events = [{"customer_id": "c0", "item_id": first, "event_type": kind, "recommendation_id": rid} for kind in ("impression", "click")]
    events.append({"customer_id": "c0", "item_id": "b1", "event_type": "not_interested", "recommendation_id": None})
    events.append({"customer_id": "c0", "item_id": "a4", "event_type": "click", "recommendation_id": "not-one-of-ours"})
    assert client.post("/v1/events", json={"events": events}).status_code == 202
    history = client.get("/v1/customers/c0/history").get_json()["events"]
    assert [(e["event_type"], e["recommendation_id"]) for e in history] == [("impression", rid), ("click", rid), ("not_interested", None), ("click", "not-one-of-ours")]


@pytest.mark.parametrize("bad", [17, "", "x" * 65, "a\nb"])
def test_a_malformed_recommendation_id_is_400(client, bad):
    response = client.post("/v1/events", json={"customer_id": "c0", "item_id": "a1", "event_type": "click", "recommendation_id": bad})
    assert response.status_code == 400 and "recommendation_id" in response.get_json()["error"]["message"]


def test_feedback_types_are_accepted_whatever_the_weight_table(make_client):
    client = make_client(EVENT_WEIGHTS={"purchase": 1.0})
    for kind in ("impression", "click", "not_interested"):
        assert client.post("/v1/events", json={"customer_id": "c0", "item_id": "a1", "event_type": kind}).status_code == 202
    assert client.post("/v1/events", json={"customer_id": "c0", "item_id": "a1", "event_type": "cart"}).status_code == 400


@pytest.mark.parametrize("kind", ["impression", "not_interested"])
def test_impressions_and_rejections_can_never_weigh_as_interest(app_config, kind):
    with pytest.raises(ConfigError, match=f"'{kind}' is not a sign of interest"):
        create_app({**app_config, "EVENT_WEIGHTS": {"purchase": 1.0, kind: 0.5}})


def test_impressions_do_not_change_the_answer_but_a_purchase_does(client):
    before = ids(client.get("/v1/customers/c0/recommendations?n=2").get_json())
    client.post("/v1/events", json={"events": [{"customer_id": "c0", "item_id": item, "event_type": "impression"} for item in before]})
    assert ids(client.get("/v1/customers/c0/recommendations?n=2").get_json()) == before


# -- not interested -------------------------------------------------------------------------
def test_not_interested_removes_the_item_from_that_customers_answers(client):
    first = ids(client.get("/v1/customers/c0/recommendations?n=2").get_json())[0]
    assert client.post("/v1/events", json={"customer_id": "c0", "item_id": first, "event_type": "not_interested"}).status_code == 202
    assert first not in ids(client.get("/v1/customers/c0/recommendations?n=10").get_json())
    assert first not in ids(client.get(f"/v1/items/{bought_by('c0')[0]}/similar?n=10&customer_id=c0").get_json())
    assert first not in ids(client.post("/v1/customers/c0/rank", json={"items": [first, "b0"]}).get_json())
    other = next(c for c in (f"c{k}" for k in range(6)) if first not in bought_by(c) and c != "c0")
    assert first in ids(client.get(f"/v1/customers/{other}/recommendations?n=10").get_json())  # nobody else's


def test_not_interested_stays_out_after_retraining(tmp_path, models_dir):
    """The next model is trained on the store (the rejection weighs 0: it is no purchase) and
    serving still reads every rejection, whatever the model's cut-off."""
    from training.pipeline import train

    events = tmp_path / "events.sqlite3"
    client = create_app({"MODEL_PATH": str(models_dir / "current"), "EVENTS_DB": str(events)}).test_client()
    first = ids(client.get("/v1/customers/c0/recommendations?n=2").get_json())[0]
    client.post("/v1/events", json={"customer_id": "c0", "item_id": first, "event_type": "not_interested"})
    purchases, _ = write_two_group_store(tmp_path / "data")
    result = train(purchases, algorithm="item-knn", models_dir=models_dir, promote=True, events_path=events)
    assert result.model.events_trained_through == 1 and first not in result.model.purchased("c0")
    retrained = create_app({"MODEL_PATH": str(models_dir / "current"), "EVENTS_DB": str(events)}).test_client()
    body = retrained.get("/v1/customers/c0/recommendations?n=10").get_json()
    assert body["model_version"] == result.path.name and first not in ids(body)


# -- experiments ----------------------------------------------------------------------------
@pytest.fixture
def experiment_app(tmp_path, models_dir):
    def build(content=None, **settings):
        path = tmp_path / "experiments.json"
        path.write_text(json.dumps(content or {"experiments": [HOMEPAGE]}))
        application = create_app({"MODEL_PATH": str(models_dir / "current"), "EVENTS_DB": str(tmp_path / "events.sqlite3"),
                                  "EXPERIMENTS": str(path), "EXPERIMENT_FIGURES_SECONDS": 0, "MODEL_CHECK_SECONDS": 0, **settings})
        return application, path

    return build


CUSTOMERS = [f"{p}{k}" for p in "cd" for k in range(6)]


def test_answers_say_which_variant_served_them_sticky_across_restarts(experiment_app):
    app, _ = experiment_app()
    homepage = parse_experiments({"experiments": [HOMEPAGE]}).named("homepage")
    first = {c: app.test_client().get(f"/v1/customers/{c}/recommendations?n=2").get_json() for c in CUSTOMERS}
    for customer, body in first.items():
        assert body["experiment"] == "homepage" and body["variant"] == assign(homepage, customer).name
        assert body["source"] == ("popular" if body["variant"] == "control" else "personalised")
        assert body["model_version"].startswith("popular+") == (body["variant"] == "control")
    assert {body["variant"] for body in first.values()} == {"control", "default"}
    restarted, _ = experiment_app()
    again = {c: restarted.test_client().get(f"/v1/customers/{c}/recommendations?n=2").get_json()["variant"] for c in CUSTOMERS}
    assert again == {c: body["variant"] for c, body in first.items()}
    similar = app.test_client().get("/v1/items/a0/similar?customer_id=c0").get_json()
    assert similar["experiment"] is None  # the experiment covers recommendations only


def test_experiment_figures_attribute_clicks_and_purchases(experiment_app):
    app, _ = experiment_app()
    client = app.test_client()
    for customer in CUSTOMERS:
        body = client.get(f"/v1/customers/{customer}/recommendations?n=2").get_json()
        rid, (first, second) = body["recommendation_id"], ids(body)
        events = [{"customer_id": customer, "item_id": item, "event_type": "impression", "recommendation_id": rid} for item in (first, second)]
        if body["variant"] == "default":  # every default answer gets a click and a purchase, control ones nothing
            events += [{"customer_id": customer, "item_id": first, "event_type": "click", "recommendation_id": rid},
                       {"customer_id": customer, "item_id": first, "event_type": "purchase", "quantity": 2}]
        client.post("/v1/events", json={"events": events})
    client.post("/v1/events", json={"customer_id": "c0", "item_id": "a1", "event_type": "click", "recommendation_id": "never-given"})
    figures = client.get("/v1/experiments/homepage").get_json()
    control, default = figures["variants"]
    shown = {v: sum(assign(parse_experiments({"experiments": [HOMEPAGE]}).named("homepage"), c).name == v for c in CUSTOMERS) for v in ("control", "default")}
    assert (control["answers"], control["impressions"], control["clicks"], control["ctr"]) == (shown["control"], 2 * shown["control"], 0, 0.0)
    assert (default["answers"], default["impressions"], default["clicks"], default["purchases"]) == (shown["default"],) + (2 * shown["default"], shown["default"], shown["default"])
    assert default["ctr"] == 0.5 and default["conversion"] == 0.5 and default["difference"]["estimate"] == 0.5
    assert figures["status"] == "running" and figures["verdict"]["status"] in ("leading", "needs more impressions")
    assert "delta method" in figures["method"]
    assert figures["unattributed"] == {"events": {"click": 1}, "reasons": {"unknown recommendation_id": 1}}  # the id never given
    listed = client.get("/v1/experiments").get_json()
    assert listed["error"] is None and [e["name"] for e in listed["experiments"]] == ["homepage"]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f'recommender_experiment_clicks_total{{experiment="homepage",variant="default"}} {float(shown["default"])}' in metrics
    assert 'recommender_experiment_ctr{experiment="homepage",variant="control"} 0.0' in metrics
    assert figures["series"] and figures["series"][-1]["variants"]["default"]["ctr"] == 0.5  # the rates over time
    page = client.get("/dashboard/experiments").get_data(as_text=True)  # the dashboard draws the API's figures
    assert str(escape(figures["verdict"]["text"])) in page and page.count("<svg") == 2 and "50.0%" in page
    # The difference a decision rests on, and the revenue, as the API gives them (a new user's trial missed both).
    found = default["difference"]
    assert "click-through against control (points, 95% interval)" in page
    assert f"+50.00 ({100 * found['low']:+.2f} to {100 * found['high']:+.2f})" in page
    revenue = "–" if default["revenue"] is None else f"{default['revenue']:,.2f}"
    assert f'<td class="num">{revenue}</td>' in page and "revenue per customer answered (95% interval)" in page
    assert str(escape(figures["verdict"]["text"])) in client.get("/dashboard/").get_data(as_text=True)
    assert 'recommender_unattributed_events_total{event_type="click"} 1.0' in metrics


def test_the_customer_page_says_why_an_answer_is_popular(experiment_app):
    """A control-variant customer with a long history read "no history to personalise from" (an operator's trial)."""
    app, _ = experiment_app()
    homepage = parse_experiments({"experiments": [HOMEPAGE]}).named("homepage")
    control = next(c for c in CUSTOMERS if assign(homepage, c).name == "control")
    page = app.test_client().get(f"/dashboard/customers/{control}").get_data(as_text=True)
    assert "(this customer is in experiment homepage's variant control, which serves popular items)" in page
    assert "no history to personalise from" not in page


def test_a_retried_purchase_counts_once_in_the_history_the_figures_and_the_metrics(experiment_app):
    """A storefront whose request timed out sends the purchase again with the same idempotency key."""
    app, _ = experiment_app()
    client = app.test_client()
    body = client.get("/v1/customers/c0/recommendations?n=2").get_json()
    purchase = {"customer_id": "c0", "item_id": ids(body)[0], "event_type": "purchase", "quantity": 2,
                "recommendation_id": body["recommendation_id"], "idempotency_key": "order-17/line-1"}
    assert client.post("/v1/events", json=purchase).get_json() == {"stored": 1, "already_stored": 0}
    for _ in range(2):  # the retries, alone and in a batch beside a new event
        assert client.post("/v1/events", json=purchase).get_json() == {"stored": 0, "already_stored": 1}
    assert client.post("/v1/events", json={"events": [purchase, {**purchase, "idempotency_key": "order-18/line-1"}]}).get_json() == {
        "stored": 1, "already_stored": 1}
    history = client.get("/v1/customers/c0/history").get_json()["events"]
    assert [event["idempotency_key"] for event in history] == ["order-17/line-1", "order-18/line-1"]
    store = app.extensions[EXTENSION]
    store.answer_log.flush()
    attributed = attribute(store.events.answers(), store.events.feedback_events())
    # Two orders of 2 each: revenue is price x 4 (it was x 8 with the retries stored).
    assert [(o.purchases, o.quantity) for o in attributed.outcomes.values()] == [(2, 4.0)]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "recommender_events_stored_total 2.0" in metrics and "recommender_events_already_stored_total 3.0" in metrics


def test_an_idempotency_key_sent_with_another_event_is_409_and_stores_nothing(client):
    assert client.post("/v1/events", json={"customer_id": "c0", "item_id": "a1", "idempotency_key": "order-3"}).status_code == 202
    batch = {"events": [{"customer_id": "c0", "item_id": "a2"}, {"customer_id": "c0", "item_id": "a3", "idempotency_key": "order-3"}]}
    response = client.post("/v1/events", json=batch)
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "idempotency_key_reused"
    assert response.get_json()["error"]["message"].startswith(
        "events[1]: customer 'c0' already has idempotency_key 'order-3' for another event: its item_id is 'a1', this one's 'a3'.")
    # A retry that leaves out the answer's id is another event too, and the message says which field differs.
    first = {"customer_id": "c0", "item_id": "a2", "recommendation_id": "r-9", "idempotency_key": "order-4"}
    assert client.post("/v1/events", json=first).status_code == 202
    response = client.post("/v1/events", json={**first, "recommendation_id": None})
    assert response.status_code == 409 and response.get_json()["error"]["message"].startswith(
        "event: customer 'c0' already has idempotency_key 'order-4' for another event: its recommendation_id is 'r-9', this one's None.")
    assert [event["item_id"] for event in client.get("/v1/customers/c0/history").get_json()["events"]] == ["a1", "a2"]


@pytest.mark.parametrize("bad", [17, "", "k" * 129, "a\nb"])
def test_a_malformed_idempotency_key_is_400(client, bad):
    response = client.post("/v1/events", json={"customer_id": "c0", "item_id": "a1", "idempotency_key": bad})
    assert response.status_code == 400 and "idempotency_key" in response.get_json()["error"]["message"]


def test_an_unknown_experiment_is_404(experiment_app, client):
    app, _ = experiment_app()
    response = app.test_client().get("/v1/experiments/nope")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "unknown_experiment"
    assert client.get("/v1/experiments").get_json() == {"source": None, "error": None, "experiments": []}


def test_a_variant_served_by_a_published_version(tmp_path, models_dir, experiment_app):
    older = train_model(tmp_path / "data-older", models_dir, make_current=False).name
    content = {"experiments": [{**HOMEPAGE, "variants": [{"name": "control", "model": older, "share": 0.5},
                                                         {"name": "default", "model": "current", "share": 0.5}]}]}
    app, _ = experiment_app(content)
    versions = {body["variant"]: body["model_version"] for body in
                (app.test_client().get(f"/v1/customers/{c}/recommendations").get_json() for c in CUSTOMERS)}
    assert versions["control"] == older and versions["default"] == (models_dir / "current").resolve().name


@pytest.mark.parametrize(
    "variants, message",
    [
        ([{"name": "control", "model": "20990101T000000Z-als-abcdef", "share": 0.5}, {"name": "default", "model": "current", "share": 0.5}],
         "no published model '20990101T000000Z-als-abcdef'"),
        ([{"name": "control", "model": "popular", "share": 0.6}, {"name": "default", "model": "current", "share": 0.6}], "add up to 1.2, not 1"),
    ],
)
def test_a_bad_experiments_file_stops_the_start_and_is_refused_on_reload(experiment_app, variants, message):
    bad = {"experiments": [{**HOMEPAGE, "variants": variants}]}
    with pytest.raises(ConfigError, match=message):
        experiment_app(bad)
    app, path = experiment_app()  # a good file at start
    path.write_text(json.dumps(bad) + " ")  # then a bad one (one byte longer: a changed file)
    client = app.test_client()
    listed = client.get("/v1/experiments").get_json()
    assert message in listed["error"] and [e["name"] for e in listed["experiments"]] == ["homepage"]
    assert client.get("/v1/customers/c0/recommendations").get_json()["experiment"] == "homepage"  # the old one keeps running
    path.write_text(json.dumps({"experiments": [{**HOMEPAGE, "enabled": False}]}))
    assert client.get("/v1/customers/c0/recommendations").get_json()["experiment"] is None
    assert client.get("/v1/experiments").get_json()["experiments"][0]["status"] == "disabled"


def test_a_missing_or_unreadable_experiments_file_stops_the_start(app_config, tmp_path):
    with pytest.raises(ConfigError, match="no such experiments file"):
        create_app({**app_config, "EXPERIMENTS": str(tmp_path / "missing.json")})
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ConfigError, match="not a readable JSON file"):
        create_app({**app_config, "EXPERIMENTS": str(tmp_path / "broken.json")})


# -- erasure --------------------------------------------------------------------------------
def test_erasure_needs_the_api_token_and_forgets_at_once(make_client, app_config):
    client = make_client(API_TOKEN="secret")
    token = {"Authorization": "Bearer secret"}
    client.post("/v1/events", json={"customer_id": "c0", "item_id": "b1", "quantity": 2}, headers=token)
    answer = client.get("/v1/customers/c0/recommendations?n=2").get_json()
    assert answer["source"] == "personalised"
    assert client.delete("/v1/customers/c0").status_code == 401
    erased = client.delete("/v1/customers/c0", headers=token).get_json()
    assert erased["events_deleted"] == 1 and erased["answers_deleted"] == 1 and erased["customer_id"] == "c0"
    other_worker = create_app(app_config).test_client()  # a second app on the same store stands for another worker
    for reader in (client, other_worker):
        body = reader.get("/v1/customers/c0/recommendations?n=3").get_json()
        assert body["source"] == "popular" and ids(body) == ["a0", "a1", "a2"]
        history = reader.get("/v1/customers/c0/history").get_json()
        assert history["purchases"] == [] and history["events"] == []
    assert set(ids(client.get("/v1/customers/c1/recommendations?n=2").get_json())) <= set(GARDEN)  # nobody else forgotten
    store = EventStore(app_config["EVENTS_DB"])
    assert store.for_customer("c0") == [] and store.answer(answer["recommendation_id"]) is None


def test_answers_buffered_in_another_worker_are_not_logged_after_the_erasure(app_config):
    first, second = create_app(app_config), create_app(app_config)
    answer = first.test_client().get("/v1/customers/c0/recommendations").get_json()  # still in first's buffer
    second.test_client().delete("/v1/customers/c0")
    assert logged(first, answer["recommendation_id"]) is None


def test_events_after_an_erasure_are_a_new_history(client):
    client.delete("/v1/customers/c0")
    client.post("/v1/events", json={"customer_id": "c0", "item_id": "b0"})
    body = client.get("/v1/customers/c0/recommendations?n=3").get_json()
    assert body["source"] == "personalised" and "b0" not in ids(body)
    assert [e["item_id"] for e in client.get("/v1/customers/c0/history").get_json()["events"]] == ["b0"]


def test_the_store_keeps_the_erasure_list_by_key_not_by_id(tmp_path):
    store = EventStore(tmp_path / "events.sqlite3")
    store.add([Event("forget-me@example.com", "a1"), Event("c1", "a2")])
    store.add_answers([AnswerRecord("r1", "forget-me@example.com", "recommendations", None, None, "v1", ("a1",), 5)])
    erasure = store.forget("forget-me@example.com")
    assert [key for _, key, _ in store.erasures()] == [erasure.customer_key] and "forget" not in erasure.customer_key
    assert (erasure.events_deleted, erasure.answers_deleted) == (1, 1) and store.count() == 1
    files = [tmp_path / "events.sqlite3", tmp_path / "events.sqlite3-wal"]  # secure_delete, then the WAL checkpointed and truncated
    assert not any(b"forget-me" in path.read_bytes() for path in files if path.exists())


def test_an_experiment_whose_model_cannot_be_loaded_is_suspended_until_it_can(tmp_path, models_dir, experiment_app):
    import shutil

    good = train_model(tmp_path / "data-older", models_dir, make_current=False)
    spare = tmp_path / "spare"
    shutil.copytree(good, spare)
    (good / "item_ids.npy").write_bytes(b"damaged")  # present, but its checksum no longer matches
    content = {"experiments": [{**HOMEPAGE, "variants": [{"name": "control", "model": good.name, "share": 0.5},
                                                         {"name": "default", "model": "current", "share": 0.5}]}]}
    app, _ = experiment_app(content)
    client = app.test_client()
    answers = [client.get(f"/v1/customers/{c}/recommendations").get_json() for c in CUSTOMERS]
    assert {a["experiment"] for a in answers} == {None}  # everyone gets the current model, outside the experiment
    status = client.get("/v1/experiments/homepage").get_json()["status"]
    assert status.startswith("suspended: variant model") and "item_ids.npy" in status
    shutil.rmtree(good)
    shutil.copytree(spare, good)  # repaired: a new folder at the same path
    assert {client.get(f"/v1/customers/{c}/recommendations").get_json()["experiment"] for c in CUSTOMERS} == {"homepage"}
    assert client.get("/v1/experiments/homepage").get_json()["status"] == "running"


def test_the_dashboard_shows_a_customer_what_their_variant_serves(experiment_app):
    """The customer page and the API never disagree: the same variant, the same items."""
    app, _ = experiment_app()
    client = app.test_client()
    for customer in ("c0", "c1", "d0", "d1"):
        body = client.get(f"/v1/customers/{customer}/recommendations?n=3").get_json()
        page = client.get(f"/dashboard/customers/{customer}?n=3").get_data(as_text=True)
        assert f"variant <code>{body['variant']}</code>" in page
        positions = [page.index(f"/dashboard/items/{item}\"") for item in ids(body)]  # every API item, in the API's order
        assert positions == sorted(positions)
