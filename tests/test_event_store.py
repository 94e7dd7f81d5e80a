"""The SQLite event store on disk: durable, per customer, readable by training."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3

from recommender.events import Event, EventStore, read_events


def test_events_round_trip_per_customer_in_order(tmp_path):
    store = EventStore(tmp_path / "events.sqlite3")
    assert store.add([Event("c1", "a", "purchase", 2.0, 100), Event("c2", "b", "view", 1.0, 101), Event("c1", "b", "cart", 1.0, 102)]) == 3
    assert [e.item_id for e in store.for_customer("c1")] == ["a", "b"]
    assert store.weighted_items("c1") == [("a", 2.0), ("b", 0.5)]  # purchase x2, cart weighs 0.5
    assert store.for_customer("nobody") == []
    assert store.count() == 3


def test_events_survive_a_new_connection_and_use_wal(tmp_path):
    path = tmp_path / "events.sqlite3"
    EventStore(path).add([Event("c1", "a", timestamp=5)])
    reopened = EventStore(path)
    assert reopened.for_customer("c1") == [Event("c1", "a", "purchase", 1.0, 5)]
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        plan = " ".join(str(row) for row in connection.execute("EXPLAIN QUERY PLAN SELECT item_id FROM events WHERE customer_id = ? AND id > ?", ("c1", 0)))
    assert "events_by_customer" in plan


def test_after_id_skips_events_the_model_was_trained_on(tmp_path):
    store = EventStore(tmp_path / "events.sqlite3")
    store.add([Event("c1", "old"), Event("c1", "new")])
    assert [item for item, _ in store.weighted_items("c1", after_id=1)] == ["new"]


def test_hostile_ids_are_data_not_sql(tmp_path):
    store = EventStore(tmp_path / "events.sqlite3")
    evil = "x'); DROP TABLE events; --"
    store.add([Event(evil, evil)])
    assert store.for_customer(evil)[0].item_id == evil and store.count() == 1


def test_read_events_gives_training_parallel_arrays(tmp_path):
    path = tmp_path / "events.sqlite3"
    assert len(read_events(path)["customer_id"]) == 0  # no store yet: no events
    EventStore(path).add([Event("c1", "a", "purchase", 3.0, 10), Event("c2", "b", "view", 1.0, 20)])
    events = read_events(path)
    assert events["customer_id"].tolist() == ["c1", "c2"]
    assert events["quantity"].tolist() == [3.0, 1.0] and events["timestamp"].tolist() == [10, 20]
    assert read_events(path, after_id=1)["item_id"].tolist() == ["b"]


def test_training_learns_items_first_seen_through_the_api(tmp_path):
    """Events stored by the API are read by the next training run; serving then skips them."""
    from recommender.events import Event, EventStore
    from training.pipeline import train

    purchases = tmp_path / "purchases.csv"
    purchases.write_text("customer_id,item_id\n" + "".join(f"c{k},a{k % 3}\nc{k},a{(k + 1) % 3}\n" for k in range(6)))
    store = EventStore(tmp_path / "events.sqlite3")
    store.add([Event(customer_id="c0", item_id="new-item", event_type="purchase", quantity=1.0, timestamp=0),
               Event(customer_id="fresh", item_id="a1", event_type="purchase", quantity=2.0, timestamp=0)])
    result = train(purchases, algorithm="item-knn", models_dir=tmp_path / "models", events_path=tmp_path / "events.sqlite3")
    model = result.model
    assert "new-item" in model.items and "fresh" in model.customers
    assert "new-item" in model.purchased("c0")
    assert model.manifest["data"]["events_through_id"] == 2


def _write_one_event_when_all_are_ready(path, barrier, outcomes) -> None:
    store = EventStore(path)
    barrier.wait()
    try:
        store.add([Event(f"c{os.getpid()}", "a")])
        outcomes.put("stored")
    except Exception as error:  # noqa: BLE001 - every refusal is reported to the parent
        outcomes.put(repr(error))


def test_workers_writing_at_once_to_a_new_store_are_never_refused(tmp_path):
    """Four worker processes open a store that does not exist yet and all write at the same
    moment, thirty times over. Before the store was prepared under a lock, about one round
    in fifteen answered "database is locked" (SQLite refuses a journal-mode change at once)."""
    context = multiprocessing.get_context("fork")
    refusals = []
    for round_number in range(30):
        path = tmp_path / f"round-{round_number}" / "events.sqlite3"
        barrier, outcomes = context.Barrier(4), context.Queue()
        workers = [context.Process(target=_write_one_event_when_all_are_ready, args=(path, barrier, outcomes)) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        results = [outcomes.get(timeout=10) for _ in workers]
        refusals += [result for result in results if result != "stored"]
        assert EventStore(path).count() == results.count("stored")
    assert refusals == []


def test_a_store_from_before_answers_were_traced_is_migrated(tmp_path):
    path = tmp_path / "events.sqlite3"
    with sqlite3.connect(path) as connection:  # the schema of the first release
        connection.execute(
            "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, customer_id TEXT NOT NULL, item_id TEXT NOT NULL, "
            "event_type TEXT NOT NULL, quantity REAL NOT NULL, timestamp INTEGER NOT NULL, received_at INTEGER NOT NULL)"
        )
        connection.execute("INSERT INTO events (customer_id, item_id, event_type, quantity, timestamp, received_at) VALUES ('c1', 'a', 'purchase', 1, 5, 5)")
    store = EventStore(path)
    store.add([Event("c1", "b", "click", 1.0, 6, "r-1")])
    assert store.for_customer("c1") == [Event("c1", "a", "purchase", 1.0, 5, None), Event("c1", "b", "click", 1.0, 6, "r-1")]
    assert store.answers() == [] and store.erasures() == []


def test_answers_older_than_the_cut_are_pruned(tmp_path):
    from recommender.events import AnswerRecord

    store = EventStore(tmp_path / "events.sqlite3")
    store.add_answers([AnswerRecord(f"r{t}", "c1", "recommendations", None, None, "v", ("a", "b"), t) for t in (10, 20, 30, 25)])
    assert store.prune_answers(before=25) == 2
    assert [a.recommendation_id for a in store.answers()] == ["r25", "r30"]  # oldest first
    assert store.answers()[0].items == ("a", "b") and store.prune_answers(before=0) == 0
