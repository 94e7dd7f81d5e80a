"""Live answers kept until the customer's next event: bounded by listed items, never stale."""

from __future__ import annotations

from recommender.topn import REMEMBERED, SCORED, Recommendation, RecommendationList, RememberedAnswers


def answer_of(length: int, tag: str) -> RecommendationList:
    return RecommendationList(tag, "personalised", [Recommendation(f"{tag}-{k}", 1.0, "") for k in range(length)])


def test_an_answer_is_scored_once_then_remembered_until_its_key_changes():
    scored = []

    def score(customer, events):
        scored.append((customer, events))
        return answer_of(3, f"{customer}{events}")

    remembered = RememberedAnswers(score, items_kept=100)
    first = remembered("c1", ((4, 1.0),))
    again = remembered("c1", ((4, 1.0),))
    newer = remembered("c1", ((4, 1.0), (7, 1.0)))  # one more event: a new key
    assert (first.origin, again.origin, newer.origin) == (SCORED, REMEMBERED, SCORED)
    assert (again.customer_id, again.source, again.items) == (first.customer_id, first.source, first.items)
    assert [i.item_id for i in newer.items] != [i.item_id for i in first.items]
    assert scored == [("c1", ((4, 1.0),)), ("c1", ((4, 1.0), (7, 1.0)))]
    assert (remembered.hits, remembered.misses, len(remembered), remembered.items) == (1, 2, 2, 6)


def test_the_bound_counts_listed_items_and_the_least_recently_asked_go_first():
    remembered = RememberedAnswers(lambda key, length: answer_of(length, key), items_kept=10)
    kept = lambda key, length: remembered(key, length).origin == REMEMBERED  # noqa: E731
    remembered("a", 4)
    remembered("b", 4)
    remembered("a", 4)  # asked again: now the most recent
    remembered("c", 4)  # 12 items > 10: the least recently asked ("b") goes
    assert remembered.items == 8 and len(remembered) == 2
    assert kept("a", 4) and kept("c", 4)
    assert not kept("b", 4)  # scored again (and "a", now the oldest, made room)
    assert remembered.items <= 10
    remembered("long", 11)  # longer than the whole bound: answered, not kept
    assert not kept("long", 11)
    assert remembered.items <= 10 and len(remembered) == 2


def test_threads_asking_at_once_keep_the_bound_and_the_count_of_items():
    from concurrent.futures import ThreadPoolExecutor

    remembered = RememberedAnswers(lambda key, length: answer_of(length, str(key)), items_kept=50)

    def ask(seed: int) -> None:
        for k in range(500):
            key = (seed * 7 + k * 13) % 40
            remembered(key, 1 + key % 5)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(ask, range(8)))
    kept = remembered.kept_answers()
    assert remembered.items == sum(len(packed[2]) for packed in kept) <= 50
    assert remembered.hits + remembered.misses == 8 * 500


def test_forgetting_a_customer_drops_only_their_answers():
    remembered = RememberedAnswers(lambda customer, events: answer_of(3, customer), items_kept=100)
    for customer, events in (("c1", 1), ("c1", 2), ("c2", 1)):
        remembered(customer, events)
    assert remembered.forget("c1") == 2
    assert len(remembered) == 1 and remembered.items == 3
    assert remembered("c2", 1).origin == REMEMBERED and remembered("c1", 1).origin == SCORED


def test_kept_answers_are_invisible_to_the_garbage_collector():
    """A full collection walks every tracked object: kept answers must not add to it."""
    import gc

    remembered = RememberedAnswers(lambda key: answer_of(10, key), items_kept=10_000)
    gc.collect()
    before = len(gc.get_objects())
    for key in range(500):
        remembered(str(key))
    for _ in range(4):  # a collection untracks one level of nested tuples
        gc.collect()
    assert len(remembered) == 500
    assert len(gc.get_objects()) - before < 50  # as objects, 500 answers would be over 10,000


def test_the_api_counts_answers_by_origin_and_a_posted_event_is_never_answered_from_memory(client):
    path = "/v1/customers/c0/recommendations?n=3"
    client.get(path)
    client.post("/v1/events", json={"customer_id": "c0", "item_id": "a3"})
    first, again = client.get(path).get_json(), client.get(path).get_json()
    client.post("/v1/events", json={"customer_id": "c0", "item_id": "a4"})
    after_another = client.get(path).get_json()
    assert "a3" not in [i["item_id"] for i in first["items"]]
    assert [i["item_id"] for i in again["items"]] == [i["item_id"] for i in first["items"]]
    assert {"a3", "a4"}.isdisjoint(i["item_id"] for i in after_another["items"])
    text = client.get("/metrics").get_data(as_text=True)
    # No top lists in this model: the first answer, the first after each event, scored.
    assert 'recommender_answer_origins_total{origin="scored"} 3.0' in text
    assert 'recommender_answer_origins_total{origin="remembered"} 1.0' in text
    assert 'recommender_answer_origins_total{origin="top_lists"} 0.0' in text


def test_an_erased_customers_remembered_answers_leave_the_worker_that_erased_them(app, client):
    client.post("/v1/events", json={"customer_id": "c0", "item_id": "a3"})
    client.post("/v1/events", json={"customer_id": "c1", "item_id": "a0"})
    for customer in ("c0", "c0", "c1"):
        client.get(f"/v1/customers/{customer}/recommendations?n=3")
    remembered = app.extensions["recommender"].models.model._remembered_live_answers
    assert len(remembered) == 2
    assert client.delete("/v1/customers/c0").status_code == 200
    assert len(remembered) == 1  # c1's stays
    assert client.get("/v1/customers/c0/recommendations?n=3").get_json()["source"] == "popular"
