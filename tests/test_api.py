"""Every endpoint's happy path, against the two-group known-answer model."""

from __future__ import annotations

import pytest

from serving.openapi import openapi_path
from tests.conftest import GARDEN, KITCHEN, bought_by


def recommended(client, customer: str, query: str = "") -> dict:
    response = client.get(f"/v1/customers/{customer}/recommendations{query}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ids(body: dict) -> list[str]:
    return [item["item_id"] for item in body["items"]]


def test_health_and_ready(client):
    assert client.get("/health").get_json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"


def test_known_customer_gets_the_unbought_items_of_their_group(client):
    body = recommended(client, "c0", "?n=2")
    assert body["customer_id"] == "c0" and body["source"] == "personalised"
    assert set(ids(body)) == set(GARDEN) - set(bought_by("c0"))
    first = body["items"][0]
    assert set(first) == {"item_id", "score", "name", "category", "reason", "because", "position"}
    assert [item["position"] for item in body["items"]] == [1, 2]
    assert set(body) == {"customer_id", "model_version", "source", "recommendation_id", "experiment", "variant", "items"}
    assert first["category"] == "Garden" and first["name"].startswith("Trowel")
    assert first["reason"].startswith("because you bought Trowel")
    assert first["because"] and set(first["because"]) <= set(bought_by("c0"))
    assert first["reason"] == "because you bought " + " and ".join(f"Trowel {item}" for item in first["because"])
    assert body["model_version"] == client.get("/v1/model").get_json()["version"]


def test_purchased_items_are_excluded_and_other_group_comes_last(client):
    body = recommended(client, "d1", "?n=10")
    assert not set(ids(body)) & set(bought_by("d1"))
    assert set(ids(body)[:2]) == set(KITCHEN) - set(bought_by("d1"))
    assert len(ids(body)) == 7  # ten items, three of them bought


def test_include_purchased_allows_bought_items(client):
    body = recommended(client, "c0", "?n=10&include_purchased=true")
    assert set(bought_by("c0")) <= set(ids(body))


def test_exclude_include_and_category_filters(client):
    assert ids(recommended(client, "c0", "?n=2&exclude=a3"))[0] == "a4"
    assert ids(recommended(client, "c0", "?n=5&include=a4,b0,b1")) == ["a4", "b0", "b1"]
    kitchen = recommended(client, "c0", "?n=10&category=kitchen")
    assert set(ids(kitchen)) == set(KITCHEN)


def test_filters_that_leave_nothing_give_an_empty_personalised_answer_not_a_popular_one(client):
    # An empty answer used to be labelled (and counted in /metrics) as popular items.
    bought = bought_by("c0")[0]
    for query in (f"?include={bought}", "?include=a4&exclude=a4", "?include=b0&category=garden"):
        body = recommended(client, "c0", query)
        assert (body["source"], body["items"]) == ("personalised", []), (query, body)
    assert recommended(client, "stranger", f"?include={bought}")["source"] == "popular"
    unknown_only = client.post("/v1/customers/c0/rank", json={"items": ["nope1", "nope2"]}).get_json()
    assert unknown_only["source"] == "popular" and len(unknown_only["items"]) == 2  # nothing scored: not personalised
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'recommender_recommendations_total{source="popular"} 1.0' in metrics


def test_unknown_customer_without_history_gets_popular_items(client):
    body = recommended(client, "stranger", "?n=3")
    assert body["source"] == "popular"
    assert ids(body) == ["a0", "a1", "a2"]  # bought by four customers each, lowest index first
    assert body["items"][0]["reason"] == "popular with other customers"


def test_event_changes_the_next_answer(client):
    before = ids(recommended(client, "c0", "?n=2"))
    response = client.post("/v1/events", json={"customer_id": "c0", "item_id": "a3", "event_type": "purchase"})
    assert response.status_code == 202 and response.get_json() == {"stored": 1, "already_stored": 0}
    after = recommended(client, "c0", "?n=2")
    assert "a3" in before and "a3" not in ids(after)
    assert ids(after)[0] == "a4"


def test_unknown_customer_with_events_gets_personalised_items(client):
    client.post("/v1/events", json={"events": [{"customer_id": "newcomer", "item_id": "b0", "quantity": 2}]})
    body = recommended(client, "newcomer", "?n=4")
    assert body["source"] == "personalised"
    assert "b0" not in ids(body)
    assert set(ids(body)) == set(KITCHEN) - {"b0"}


def test_an_item_only_viewed_is_named_as_viewed(client):
    # The helper's report: a view was explained as "because you bought ...".
    client.post("/v1/events", json={"customer_id": "browser", "item_id": "b0", "event_type": "view"})
    body = recommended(client, "browser", "?n=3")
    assert body["source"] == "personalised" and all(item["reason"] == "because you viewed Whisk b0" for item in body["items"])
    client.post("/v1/events", json={"customer_id": "browser", "item_id": "b0", "event_type": "purchase"})
    assert all(item["reason"] == "because you bought Whisk b0" for item in recommended(client, "browser", "?n=3")["items"])


def test_events_for_unknown_items_are_stored_and_harmless(client):
    response = client.post("/v1/events", json={"customer_id": "c0", "item_id": "brand-new-item"})
    assert response.status_code == 202
    assert set(ids(recommended(client, "c0", "?n=2"))) == {"a3", "a4"}
    history = client.get("/v1/customers/c0/history").get_json()
    assert [e["item_id"] for e in history["events"]] == ["brand-new-item"]


def test_batch_of_events(client):
    batch = {"events": [{"customer_id": "c2", "item_id": "a0", "timestamp": "2025-03-01T12:00:00Z"}, {"customer_id": "c2", "item_id": "a1", "timestamp": 1740830400}]}
    assert client.post("/v1/events", json=batch).get_json() == {"stored": 2, "already_stored": 0}
    events = client.get("/v1/customers/c2/history").get_json()["events"]
    assert [e["timestamp"] for e in events] == ["2025-03-01T12:00:00Z", "2025-03-01T12:00:00Z"]
    assert [e["event_type"] for e in events] == ["purchase", "purchase"]


def test_history_lists_training_purchases_and_events(client):
    client.post("/v1/events", json={"customer_id": "d0", "item_id": "b4", "event_type": "view"})
    body = client.get("/v1/customers/d0/history").get_json()
    assert sorted(p["item_id"] for p in body["purchases"]) == sorted(bought_by("d0"))
    assert body["purchases"][0]["category"] == "Kitchen"
    assert not any(p["viewed_only"] for p in body["purchases"])  # a store of purchases only
    assert body["events"][0]["item_id"] == "b4" and body["events"][0]["event_type"] == "view"


def test_history_comes_a_page_at_a_time_newest_events_first(client):
    """A customer of 20,000 events was one answer of 3 MB (a new user's trial)."""
    client.post("/v1/events", json={"events": [{"customer_id": "d0", "item_id": f"x{k}", "event_type": "view"} for k in range(7)]})
    whole = client.get("/v1/customers/d0/history").get_json()
    assert (whole["purchases_total"], whole["events_total"]) == (3, 7) and [e["item_id"] for e in whole["events"]] == [f"x{k}" for k in range(7)]
    pages = [client.get(f"/v1/customers/d0/history?limit=3&offset={offset}").get_json() for offset in (0, 3, 6, 9)]
    assert [[e["item_id"] for e in page["events"]] for page in pages] == [["x4", "x5", "x6"], ["x1", "x2", "x3"], ["x0"], []]
    assert [len(page["purchases"]) for page in pages] == [3, 0, 0, 0] and all(page["events_total"] == 7 for page in pages)
    assert [p["item_id"] for p in client.get("/v1/customers/d0/history?limit=2&offset=1").get_json()["purchases"]] == \
        [p["item_id"] for p in whole["purchases"]][1:3]
    for bad in ("limit=0", "limit=1001", "offset=-1", "limit=x"):
        response = client.get(f"/v1/customers/d0/history?{bad}")
        assert response.status_code == 400 and bad.split("=")[0] in response.get_json()["error"]["message"]


def test_similar_items_stay_in_their_group(client):
    body = client.get("/v1/items/a0/similar?n=4").get_json()
    assert body["source"] == "similar"
    assert set(ids(body)) == set(GARDEN) - {"a0"}
    assert body["items"][0]["reason"] == "often bought with Trowel a0"


def test_similar_items_for_a_customer_leave_out_their_history_as_their_recommendations_do(client):
    # c0 bought a0, a1, a2: "similar to a0" for c0 is what is left of the garden, then popular items.
    body = client.get("/v1/items/a0/similar?n=4&customer_id=c0").get_json()
    assert set(ids(body)[:2]) == set(GARDEN) - set(bought_by("c0"))
    assert not set(ids(body)) & set(bought_by("c0")) and all(item["reason"] == "popular with other customers" for item in body["items"][2:])
    assert set(ids(client.get("/v1/items/a0/similar?n=4&customer_id=c0&include_purchased=true").get_json())) == set(GARDEN) - {"a0"}
    client.post("/v1/events", json={"customer_id": "c0", "item_id": "a3", "event_type": "view"})  # history since the model, too
    assert ids(client.get("/v1/items/a0/similar?n=1&customer_id=c0").get_json()) == ["a4"]
    client.delete("/v1/customers/c0")  # erased: nothing of the old history is used, nor left out
    assert set(ids(client.get("/v1/items/a0/similar?n=4&customer_id=c0").get_json())) == set(GARDEN) - {"a0"}
    assert set(ids(client.get("/v1/items/a0/similar?n=4&customer_id=stranger").get_json())) == set(GARDEN) - {"a0"}


def test_rank_names_the_candidates_in_the_customers_history(client):
    # c0 bought a0, a1, a2; every candidate comes back, and those three are named.
    body = client.post("/v1/customers/c0/rank", json={"items": ["b0", "a1", "a3", "nonexistent", "a0"]}).get_json()
    assert set(ids(body)) == {"b0", "a1", "a3", "nonexistent", "a0"}
    assert body["in_history"] == [item for item in ids(body) if item in ("a0", "a1")]
    client.post("/v1/events", json={"customer_id": "c0", "item_id": "b0", "event_type": "view"})  # since the model, too
    assert set(client.post("/v1/customers/c0/rank", json={"items": ["b0", "a3"]}).get_json()["in_history"]) == {"b0"}
    assert client.post("/v1/customers/stranger/rank", json={"items": ["a0", "a1"]}).get_json()["in_history"] == []
    response = client.post("/v1/customers/c0/rank", json={"items": ["a3"], "n": 1})  # a field it does not take
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "unknown_field" and "n is not a field" in response.get_json()["error"]["message"]
    client.post("/v1/events", json={"customer_id": "c0", "item_id": "brand-new"})  # unknown to the model, bought all the same
    assert client.post("/v1/customers/c0/rank", json={"items": ["brand-new", "a3"]}).get_json()["in_history"] == ["brand-new"]
    client.delete("/v1/customers/c0")  # erased: nothing of the old history is named
    assert client.post("/v1/customers/c0/rank", json={"items": ["a0", "a1"]}).get_json()["in_history"] == []


def test_rank_orders_candidates_and_puts_unknown_items_last(client):
    response = client.post("/v1/customers/c0/rank", json={"items": ["b0", "nonexistent", "a3"]})
    body = response.get_json()
    assert response.status_code == 200 and body["source"] == "personalised"
    assert ids(body) == ["a3", "b0", "nonexistent"]
    assert body["items"][2]["score"] is None
    twice = client.post("/v1/customers/c0/rank", json={"items": ["b0", "a3", "b0", "nonexistent", "nonexistent"]}).get_json()
    assert ids(twice) == ["a3", "b0", "nonexistent"]  # each candidate once
    assert [item["position"] for item in twice["items"]] == [1, 2, 3]


def test_model_summary(client):
    body = client.get("/v1/model").get_json()
    assert body["algorithm"] == "item-knn"
    assert body["customers"] == 12 and body["items"] == 10
    assert "fingerprint" in body["data"]


def test_metrics_count_requests_fallbacks_and_events(client):
    client.get("/v1/customers/c0/recommendations")
    client.get("/v1/customers/stranger/recommendations")
    client.post("/v1/events", json={"customer_id": "c0", "item_id": "a3"})
    response = client.get("/metrics")
    text = response.get_data(as_text=True)
    assert response.headers["Content-Type"].count("charset") == 1  # Prometheus' own type, not a second charset added
    assert 'recommender_http_requests_total{endpoint="/v1/customers/<customer_id>/recommendations",method="GET",status="200"} 2.0' in text
    assert 'recommender_recommendations_total{source="popular"} 1.0' in text
    assert 'recommender_recommendations_total{source="personalised"} 1.0' in text
    assert "recommender_events_stored_total 1.0" in text
    assert "recommender_http_request_duration_seconds_bucket" in text
    assert 'recommender_model_info{algorithm="item-knn"' in text


def test_openapi_document_matches_the_routes(app, client):
    document = client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, methods in document["paths"].items() for method in methods}
    routed = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("dashboard."):
            continue  # HTML pages for people (README, "Dashboard"), not the JSON API
        routed |= {(openapi_path(rule.rule), method) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == routed


@pytest.mark.parametrize("path", ["/v1/customers/c0/recommendations?N=3", "/v1/customers/c0/recommendations?n=3&categroy=Garden",
                                  "/v1/items/a0/similar?customer=c0", "/v1/customers/c0/history?n=3", "/v1/model?verbose=1"])
def test_a_query_parameter_the_route_does_not_take_is_400_naming_it(client, path):
    """A new user's "?N=3" was ignored: ten items came back, as if it had been understood."""
    response = client.get(path)
    body = response.get_json()
    assert response.status_code == 400 and body["error"]["code"] == "unknown_parameter"
    unknown = path.split("?")[1].split("&")[-1].split("=")[0]
    assert body["error"]["message"].startswith(f"{unknown!r} is not a query parameter of GET ")
    if "recommendations" in path:
        assert "it takes category, exclude, include, include_purchased, n" in body["error"]["message"]


def test_documented_parameters_and_queries_outside_the_api_are_taken(client):
    assert client.get("/v1/customers/c0/recommendations?n=3&category=Garden&include_purchased=false&exclude=a3").status_code == 200
    assert client.head("/v1/customers/c0/recommendations?n=2").status_code == 200  # HEAD takes GET's parameters
    assert client.head("/v1/customers/c0/recommendations?N=2").status_code == 400
    assert client.options("/v1/items/a0/similar?n=2").status_code == 200
    assert client.get("/v1/items/a0/similar?n=2&customer_id=c0&include_purchased=true").status_code == 200
    assert client.get("/health?customer=c7").status_code == 200  # load balancers' and benchmarks' cache breakers
    assert client.get("/dashboard/?utm_source=mail").status_code == 200


def test_ids_holding_a_slash_are_addressed_percent_encoded_on_every_route(client):
    """An id with "/" was stored (events and files allow it) but no path route matched it: such
    a customer could not even be erased through the API (a new user's trial)."""
    assert client.post("/v1/events", json={"customer_id": "shop/42", "item_id": "a0"}).status_code == 202
    assert client.post("/v1/events", json={"customer_id": "c9", "item_id": "x/y"}).status_code == 202
    body = recommended(client, "shop%2F42", "?n=3")
    assert body["customer_id"] == "shop/42" and "a0" not in ids(body)
    plain = [{k: v for k, v in recommended(client, c, "").items() if k != "recommendation_id"} for c in ("shop%2F42", "shop/42")]
    assert plain[0] == plain[1] and plain[0]["customer_id"] == "shop/42"  # the plain (fast) route too
    history = client.get("/v1/customers/shop%2F42/history").get_json()
    assert [event["item_id"] for event in history["events"]] == ["a0"]
    ranked = client.post("/v1/customers/shop%2F42/rank", json={"items": ["a3", "b0"]})
    assert ranked.status_code == 200 and {item["item_id"] for item in ranked.get_json()["items"]} == {"a3", "b0"}
    unknown_item = client.get("/v1/items/x%2Fy/similar").get_json()["error"]["message"]
    assert "x/y" in unknown_item and "endpoint" not in unknown_item, unknown_item  # routed: the model does not know that item
    assert client.delete("/v1/customers/shop%2F42/").status_code == 404  # a trailing slash erases no "shop/42/"
    erased = client.delete("/v1/customers/shop%2F42")
    assert erased.status_code == 200 and erased.get_json()["events_deleted"] == 1
    assert client.get("/v1/customers/shop%2F42/history").get_json()["events"] == []
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'endpoint="/v1/customers/<customer_id>/recommendations"' in metrics and "<id:" not in metrics  # labels as before
