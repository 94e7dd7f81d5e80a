"""The event store contract: every backend (SQLite on a temporary file, PostgreSQL in a
throwaway cluster) holds events, logged answers and erasures alike, and is read by
serving and training alike. Backend-specific checks follow the contract."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
import time

import pytest

from recommender.events import (
    AnswerRecord,
    Event,
    EventStore,
    EventStoreUnavailable,
    IdempotencyKeyReused,
    PostgresEventStore,
    SQLiteEventStore,
    open_event_store,
    read_erasures,
    read_events,
)

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(params=BACKENDS)
def location(request, tmp_path) -> str:
    """Where a fresh, empty store of each backend lives."""
    if request.param == "sqlite":
        return str(tmp_path / "events.sqlite3")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def open_store(location):
    """Open stores at ``location`` (each one stands for another worker process or host); closed afterwards."""
    opened = []

    def open_one() -> EventStore:
        store = open_event_store(location)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


def test_the_location_picks_the_backend(location, open_store):
    store = open_store()
    assert isinstance(store, PostgresEventStore if location.startswith("postgresql://") else SQLiteEventStore)
    assert type(EventStore(location)) is type(store)  # EventStore(location) is the factory too


def test_events_round_trip_per_customer_in_order(open_store):
    store = open_store()
    assert store.add([Event("c1", "a", "purchase", 2.0, 100), Event("c2", "b", "view", 1.0, 101), Event("c1", "b", "cart", 1.0, 102, "r-7")]) == 3
    assert store.for_customer("c1") == [Event("c1", "a", "purchase", 2.0, 100), Event("c1", "b", "cart", 1.0, 102, "r-7")]
    assert store.weighted_items("c1") == [("a", 2.0), ("b", 0.5)]  # purchase x2, cart weighs 0.5
    assert store.for_customer("nobody") == [] and store.add([]) == 0
    assert store.count() == 3


def test_a_retried_event_is_stored_once_per_customer_and_idempotency_key(open_store):
    """A storefront that timed out sends the purchase again with the same key: one purchase
    (and one share of revenue), whether the retry comes alone, in a batch or from another worker."""
    first, other = open_store(), open_store()
    order = Event("c1", "a", "purchase", 2.0, 100, "r-1", "order-7/line-1")
    assert first.add([order]) == 1
    assert other.add([Event("c1", "a", "purchase", 2.0, 105, "r-1", "order-7/line-1")]) == 0  # a retry, dated again: the first stays
    batch = [Event("c1", "b", idempotency_key="order-8/line-1"), Event("c1", "b", idempotency_key="order-8/line-1"),
             Event("c2", "a", idempotency_key="order-7/line-1"), Event("c1", "c"), Event("c1", "c")]  # another customer's key; no keys
    assert other.add(batch) == 4
    assert first.for_customer("c1") == [order, Event("c1", "b", idempotency_key="order-8/line-1"), Event("c1", "c"), Event("c1", "c")]
    assert [event.idempotency_key for event in first.for_customer("c2")] == ["order-7/line-1"]
    assert first.count() == 5 and first.weighted_items("c1") == [("a", 2.0), ("b", 1.0), ("c", 1.0), ("c", 1.0)]


def test_a_key_sent_again_with_another_event_is_refused_and_nothing_of_the_batch_is_stored(open_store):
    store = open_store()
    store.add([Event("c1", "a", "purchase", 2.0, 100, "r-1", "k1")])
    for other in (Event("c1", "b", "purchase", 2.0, 100, "r-1", "k1"), Event("c1", "a", "view", 2.0, 100, "r-1", "k1"),
                  Event("c1", "a", "purchase", 3.0, 100, "r-1", "k1"), Event("c1", "a", "purchase", 2.0, 100, "r-2", "k1")):
        with pytest.raises(IdempotencyKeyReused, match="already has idempotency_key 'k1' for another event: its ") as refused:
            store.add([Event("c1", "new"), other])
        assert refused.value.position == 1
    with pytest.raises(IdempotencyKeyReused):  # the same key twice in one batch, for two events
        store.add([Event("c2", "x", idempotency_key="k"), Event("c2", "y", idempotency_key="k")])
    assert store.count() == 1 and store.for_customer("c2") == []
    assert store.add([Event("c1", "a", "purchase", 2.0, 999, "r-1", "k1")]) == 0  # a retry at another time is a retry


def test_a_write_is_seen_at_once_by_every_other_store_on_the_same_location(open_store):
    """Another worker process (SQLite) or another host (PostgreSQL): the next read sees it."""
    reader, writer = open_store(), open_store()
    assert reader.customer_feedback("c1").new_events == []  # the reader has looked before
    writer.add([Event("c1", "a"), Event("c1", "z", "not_interested")])
    feedback = reader.customer_feedback("c1")
    assert feedback.new_events == [("a", 1.0)] and feedback.rejected == ["z"]
    writer.forget("c1")
    assert reader.customer_feedback("c1").erasure_id == 1 and reader.for_customer("c1") == []


def test_after_id_skips_events_the_model_was_trained_on_but_never_a_rejection(open_store):
    store = open_store()
    store.add([Event("c1", "old"), Event("c1", "dull", "not_interested"), Event("c1", "new", "view", 3.0)])
    feedback = store.customer_feedback("c1", after_id=2)
    assert feedback.new_events == [("new", pytest.approx(0.3))] and feedback.rejected == ["dull"] and feedback.erasure_id == 0
    assert [event.item_id for event in store.for_customer("c1", after_id=1)] == ["dull", "new"]
    assert store.customer_feedback("c1", {"purchase": 5.0}).new_events == [("old", 5.0)]  # the caller's weights


def test_feedback_names_the_new_items_only_viewed(open_store):
    store = open_store()
    store.add([Event("c1", "looked", "view"), Event("c1", "carted", "cart"), Event("c1", "got", "view"), Event("c1", "got"),
               Event("c1", "shown", "impression"), Event("c1", "looked", "click")])
    feedback = store.customer_feedback("c1")
    # "got" was viewed and then bought; an impression weighs nothing, so it is no history at all.
    assert feedback.viewed == ("looked", "carted") and [item for item, _ in feedback.new_events] == ["looked", "carted", "got", "got", "looked"]
    assert store.customer_feedback("nobody").viewed == ()


def test_hostile_ids_are_data_not_sql(open_store):
    store = open_store()
    evil = "x'); DROP TABLE events; --"
    store.add([Event(evil, evil), Event("ü€😀", "%_\\")])
    assert store.for_customer(evil)[0].item_id == evil and store.count() == 2
    assert store.for_customer("ü€😀")[0].item_id == "%_\\" and store.for_customer("%") == []


def test_training_reads_parallel_arrays_and_the_erasure_list(location, open_store):
    store = open_store()
    store.add([Event("c1", "a", "purchase", 3.0, 10), Event("c2", "b", "view", 1.0, 20)])
    events = read_events(location)
    assert events["id"].tolist() == [1, 2] and events["customer_id"].tolist() == ["c1", "c2"]
    assert events["quantity"].tolist() == [3.0, 1.0] and events["timestamp"].tolist() == [10, 20]
    assert read_events(location, after_id=1)["item_id"].tolist() == ["b"]
    erasure = store.forget("c2")
    assert read_erasures(location) == ({erasure.customer_key}, erasure.erasure_id)


def test_training_learns_items_first_seen_through_the_api(tmp_path, location, open_store):
    """Events stored by the API are read by the next training run; serving then skips them."""
    from training.pipeline import train

    purchases = tmp_path / "purchases.csv"
    purchases.write_text("customer_id,item_id\n" + "".join(f"c{k},a{k % 3}\nc{k},a{(k + 1) % 3}\n" for k in range(6)))
    open_store().add([Event("c0", "new-item", "purchase", 1.0, 0), Event("fresh", "a1", "purchase", 2.0, 0)])
    model = train(purchases, algorithm="item-knn", models_dir=tmp_path / "models", events_path=location).model
    assert "new-item" in model.items and "fresh" in model.customers and "new-item" in model.purchased("c0")
    assert model.manifest["data"]["events_through_id"] == 2


def test_forgetting_deletes_events_and_answers_and_keeps_the_key(open_store):
    store = open_store()
    store.add([Event("forget-me@example.com", "a1"), Event("c1", "a2")])
    store.add_answers([AnswerRecord("r1", "forget-me@example.com", "recommendations", None, None, "v1", ("a1",), 5),
                       AnswerRecord("r2", "c1", "recommendations", None, None, "v1", ("a2",), 6)])
    erasure = store.forget("forget-me@example.com")
    assert (erasure.events_deleted, erasure.answers_deleted, erasure.erasure_id) == (1, 1, 1)
    assert [key for _, key, _ in store.erasures()] == [erasure.customer_key] and "forget" not in erasure.customer_key
    assert store.erasures(after_id=1) == [] and store.count() == 1 and store.answer("r1") is None
    assert store.customer_feedback("forget-me@example.com").erasure_id == 1
    # An answer served before the erasure but logged after it (a worker's buffer) stays out.
    assert store.add_answers([AnswerRecord("r3", "forget-me@example.com", "recommendations", None, None, "v1", ("a1",), erasure.erased_at - 1)]) == 0
    assert [a.recommendation_id for a in store.answers()] == ["r2"]


def test_an_erasure_deletes_answers_of_every_day_also_after_another_worker_erased_before(open_store):
    """Answers on three days, two of them long past, and two rounds of erasure by another
    worker: the second finds the answer the writer logged after the first."""
    writer, eraser, now = open_store(), open_store(), int(time.time())
    day = 86_400

    def answer(rid, customer, served_at):
        return AnswerRecord(rid, customer, "recommendations", None, None, "v1", ("a1",), served_at)

    writer.add_answers([answer("r1", "c1", day + 5), answer("r2", "c2", day + 6), answer("r3", "c1", 3 * day)])
    writer.add_answers([answer("r4", "c1", now), answer("r5", "c2", now), answer("r6", None, now)])
    writer.add_answers([answer("r7", "c1", now)])
    assert eraser.forget("c1").answers_deleted == 4
    writer.add_answers([answer("r8", "c1", now + 5), answer("r9", "c2", now + 5)])  # after the erasure
    assert eraser.forget("c1").answers_deleted == 1
    assert [a.recommendation_id for a in eraser.answers()] == ["r2", "r5", "r6", "r9"]
    assert eraser.forget("c2").answers_deleted == 3 and eraser.forget("c3").answers_deleted == 0


def test_logged_answers_keep_any_valid_id_as_it_was(open_store):
    """Backslashes, COPY's NULL marker, quotes, commas and non-ASCII survive the log (PostgreSQL
    writes it with COPY, whose text format escapes them)."""
    store = open_store()
    odd = ["a\\b", "\\N", "it's", 'say "hi"', "x,y", "Ærø ☕", "NULL", " padded "]
    written = [AnswerRecord(f"r{k}", odd[k], "recommendations", None if k % 2 else "exp\\1", None if k % 2 else "b",
                            odd[-1 - k], tuple(odd[k:] + odd[:k]), 10 + k) for k in range(len(odd))]
    assert store.add_answers(written) == len(odd)
    assert store.answers() == written


def test_the_answer_log_reads_by_time_experiment_and_id_and_prunes(open_store):
    store = open_store()
    assert store.add_answers([AnswerRecord(f"r{t}", "c1", "recommendations", "exp" if t > 15 else None, "b" if t > 15 else None, "v", ("a", "b"), t)
                              for t in (10, 20, 30, 25)]) == 4
    assert store.answer("r20") == AnswerRecord("r20", "c1", "recommendations", "exp", "b", "v", ("a", "b"), 20)
    assert [a.recommendation_id for a in store.answers(experiment="exp", since=21)] == ["r25", "r30"]
    assert store.prune_answers(before=25) == 2
    assert [a.recommendation_id for a in store.answers()] == ["r25", "r30"]  # oldest first
    assert store.prune_answers(before=0) == 0 and store.answer("nope") is None


def test_attribution_reads_feedback_events_by_type_and_time(open_store):
    store = open_store()
    store.add([Event("c1", "a", "click", 1.0, 10, "r1"), Event("c1", "a", "purchase", 1.0, 20, "r1"),
               Event("c1", "b", "view", 1.0, 15), Event("c2", "c", "impression", 1.0, 30, "r2"), Event("c3", "d", "click", 1.0, 5)])
    assert [(e.event_type, e.timestamp) for e in store.feedback_events()] == [("click", 5), ("click", 10), ("purchase", 20), ("impression", 30)]
    # From 11 to 29, and the click dated before 11 that names an answer: attribution must see it
    # (as outside the window) rather than lose it; the click of 5 names none and stays out.
    assert [(e.item_id, e.timestamp) for e in store.feedback_events(since=11, until=29)] == [("a", 10), ("a", 20)]
    assert store.feedback_events(types=("view",)) == [Event("c1", "b", "view", 1.0, 15)]


def test_writers_in_several_threads_lose_nothing_and_ids_stay_unique(location, open_store):
    stores = [open_store() for _ in range(3)]

    def write(store, number):
        for k in range(20):
            store.add([Event(f"w{number}-{k}", "a"), Event(f"w{number}-{k}", "b")])

    threads = [threading.Thread(target=write, args=(store, n)) for n, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = read_events(location)
    assert len(events["id"]) == 120 == len(set(events["id"].tolist())) and stores[0].count() == 120


# -- PostgreSQL only ----------------------------------------------------------------

def test_postgresql_down_refuses_writes_and_the_same_store_recovers_by_itself(postgres_cluster, postgres_url):
    store = PostgresEventStore(postgres_url, wait_seconds=0.5)
    store.add([Event("c1", "a")])
    postgres_cluster.stop()
    try:
        with pytest.raises(EventStoreUnavailable):
            store.add([Event("c1", "lost")])  # refused, so never acknowledged
        with pytest.raises(EventStoreUnavailable):
            store.customer_feedback("c1")
    finally:
        postgres_cluster.start()
    deadline = time.monotonic() + 15
    while True:  # no reopening: the pool reconnects in the background
        try:
            store.add([Event("c1", "b")])
            break
        except EventStoreUnavailable:
            assert time.monotonic() < deadline, "the store did not recover within 15 s of the restart"
            time.sleep(0.1)
    assert [e.item_id for e in store.for_customer("c1")] == ["a", "b"]
    store.close()


@pytest.mark.slow
def test_after_a_long_outage_the_store_recovers_within_seconds_of_the_server(postgres_cluster, postgres_url):
    """A ten-second outage puts the pool's own reconnection in backoff (its next try some
    seconds after the server is back); a worker answered 503 all that time. The store's
    direct probe renews the pool instead, about a second after the server answers."""
    store = PostgresEventStore(postgres_url, wait_seconds=0.5)
    store.add([Event("long-outage", "a")])
    postgres_cluster.stop()
    try:
        down_until = time.monotonic() + 10
        while time.monotonic() < down_until:
            with pytest.raises(EventStoreUnavailable):
                store.add([Event("long-outage", "lost")])
            time.sleep(0.1)
    finally:
        postgres_cluster.start()
    up_at = time.monotonic()
    while True:
        try:
            store.add([Event("long-outage", "b")])
            break
        except EventStoreUnavailable:
            assert time.monotonic() < up_at + 15, "the store did not recover within 15 s of the restart"
            time.sleep(0.05)
    recovered_after = time.monotonic() - up_at
    assert recovered_after < 3.0, f"the store took {recovered_after:.1f} s to recover after the server was back"
    assert [e.item_id for e in store.for_customer("long-outage")] == ["a", "b"]
    store.close()


def test_a_throwaway_cluster_is_stopped_and_removed_when_its_test_run_is_killed(postgres_cluster):
    """``make test`` stopped by a signal runs no teardown: its PostgreSQL server stayed up."""
    import signal
    import socket
    import subprocess
    import sys
    from pathlib import Path

    child = subprocess.Popen(
        [sys.executable, "-c", "import time\nfrom tests.postgres_cluster import ThrowawayCluster\n"
         "cluster = ThrowawayCluster().start()\nprint(cluster.folder, cluster.port, flush=True)\ntime.sleep(600)"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    folder, port = child.stdout.readline().split()
    socket.create_connection(("127.0.0.1", int(port)), timeout=5).close()  # up
    child.send_signal(signal.SIGKILL)
    child.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Path(folder).exists():
        time.sleep(0.2)
    assert not Path(folder).exists()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(port)), timeout=2).close()


def test_a_password_never_leaves_in_the_location():
    store = open_event_store("postgresql://shop:s3cret@db.internal:5432/events")  # nothing is connected until first use
    assert store.location == "postgresql://shop:***@db.internal:5432/events" and "s3cret" not in repr(vars(store).get("location"))


# -- SQLite only --------------------------------------------------------------------

def test_sqlite_locations_as_path_or_url(tmp_path):
    SQLiteEventStore(tmp_path / "events.sqlite3").add([Event("c1", "a")])
    assert open_event_store(f"sqlite:///{tmp_path}/events.sqlite3").count() == 1  # four slashes: an absolute path
    for bad in ("mysql://x/y", "sqlite://relative"):
        with pytest.raises(ValueError, match="sqlite:///path"):
            open_event_store(bad)


def test_sqlite_uses_wal_and_the_customer_index(tmp_path):
    path = tmp_path / "events.sqlite3"
    EventStore(path).add([Event("c1", "a", timestamp=5)])
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        plan = " ".join(str(row) for row in connection.execute("EXPLAIN QUERY PLAN SELECT item_id FROM events WHERE customer_id = ? AND id > ?", ("c1", 0)))
    assert "events_by_customer" in plan
    assert len(read_events(tmp_path / "absent.sqlite3")["customer_id"]) == 0  # no store yet: no events, and none created
    assert not (tmp_path / "absent.sqlite3").exists()


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
    assert store.add([Event("c1", "c", idempotency_key="k"), Event("c1", "c", idempotency_key="k")]) == 1  # retries are recognised too



def test_a_postgresql_database_from_before_idempotency_keys_is_migrated(postgres_url):
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:  # the events table until 2026-12-05
        connection.execute(
            "CREATE TABLE events (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer_id TEXT NOT NULL, item_id TEXT NOT NULL, "
            "event_type TEXT NOT NULL, quantity DOUBLE PRECISION NOT NULL, timestamp BIGINT NOT NULL, received_at BIGINT NOT NULL, "
            "recommendation_id TEXT)")
        connection.execute("INSERT INTO events (customer_id, item_id, event_type, quantity, timestamp, received_at) VALUES ('c1', 'a', 'purchase', 1, 5, 5)")
    store = EventStore(postgres_url)
    try:
        assert store.add([Event("c1", "b", idempotency_key="k"), Event("c1", "b", idempotency_key="k")]) == 1
        assert store.for_customer("c1") == [Event("c1", "a", "purchase", 1.0, 5), Event("c1", "b", idempotency_key="k")]
    finally:
        store.close()


def test_an_erasure_finds_every_row_of_a_long_log_without_an_index(tmp_path):
    """1,201 of the customer's answers among 2,402: more than one DELETE statement's worth of ids."""
    store = EventStore(tmp_path / "events.sqlite3")
    store.add_answers([AnswerRecord(f"r{k}", "c1" if k % 2 else "c2", "recommendations", None, None, "v1", ("a",), 5) for k in range(1, 2403)])
    assert store.forget("c1").answers_deleted == 1201
    assert [a.recommendation_id for a in store.answers()] == [f"r{k}" for k in range(2, 2403, 2)]


@pytest.mark.parametrize("meanwhile", ["a batch logged", "the newest row erased, its id given again"])
def test_an_erasure_deletes_what_was_logged_between_its_read_and_its_transaction(tmp_path, monkeypatch, meanwhile):
    """The erasure reads the log for the customer's rows before its transaction; another worker
    logs (and erases) in between. Whatever of the customer's was logged meanwhile goes too."""
    import recommender.events.store as sqlite_store

    path = tmp_path / "events.sqlite3"
    store, other = EventStore(path), EventStore(path)

    def answer(rid, customer):
        return AnswerRecord(rid, customer, "recommendations", None, None, "v1", ("a",), 5)

    store.add_answers([answer("r1", "c1"), answer("r2", "c2"), answer("r3", "c9")])
    read_first = sqlite_store._logged_answers_of

    def read_then_another_worker_writes(connection, customer_id):
        newest, found = read_first(connection, customer_id)
        if customer_id == "c1":  # not the other worker's own erasure, which reads too
            if meanwhile == "the newest row erased, its id given again":
                assert other.forget("c9").answers_deleted == 1
            other.add_answers([answer("r4", "c1")])
        return newest, found

    monkeypatch.setattr(sqlite_store, "_logged_answers_of", read_then_another_worker_writes)
    assert store.forget("c1").answers_deleted == 2
    assert [a.recommendation_id for a in store.answers()] == ["r2"] + (["r3"] if meanwhile == "a batch logged" else [])


def test_an_answer_served_while_the_erasure_read_the_log_is_not_logged_after_it(tmp_path, monkeypatch):
    """The erasure's time is its commit's, not its start's: the read may take a while."""
    import recommender.events.store as sqlite_store

    store, read_first, served = EventStore(tmp_path / "events.sqlite3"), sqlite_store._logged_answers_of, []

    def slow_read(connection, customer_id):
        found = read_first(connection, customer_id)
        time.sleep(1.1)  # into the next second
        served.append(int(time.time()))  # a worker answers the customer now, and logs it later
        return found

    monkeypatch.setattr(sqlite_store, "_logged_answers_of", slow_read)
    store.forget("c1")
    assert store.add_answers([AnswerRecord("late", "c1", "recommendations", None, None, "v1", ("a",), served[0])]) == 0


def test_a_store_whose_answers_were_indexed_by_customer_loses_the_index(tmp_path):
    """Until 2026-12-05 the log had an index by customer, which every logged answer paid for."""
    path = tmp_path / "events.sqlite3"
    store = EventStore(path)
    store.add_answers([AnswerRecord(f"r{k}", f"c{k % 2}", "recommendations", None, None, "v1", ("a",), 5) for k in range(4)])
    store.close()
    with sqlite3.connect(path) as connection:  # as that release left it
        connection.execute("CREATE INDEX answers_by_customer ON answers (customer_id)")
    reopened = EventStore(path)
    assert reopened.forget("c1").answers_deleted == 2
    assert [a.recommendation_id for a in reopened.answers()] == ["r0", "r2"]
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'answers'").fetchall() == []


def test_a_postgresql_server_that_never_answers_is_diagnosed_once_then_fails_fast():
    """A worker that never connected tries one direct connection to name the cause; after it
    the fail-fast window holds (it used to start before that attempt and be over by its end,
    so every request waited for the pool and a direct attempt, 3 s each)."""
    import socket

    from recommender.events import EventStoreUnavailable, PostgresEventStore

    pytest.importorskip("psycopg_pool")
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(100)  # accepts connections, never answers: a hung or black-holed server
    store = PostgresEventStore(f"postgresql://nobody@127.0.0.1:{hung.getsockname()[1]}/nothing")
    try:
        with pytest.raises(EventStoreUnavailable):
            store.customer_feedback("c1")
        started = time.monotonic()
        with pytest.raises(EventStoreUnavailable, match="retry shortly"):
            store.customer_feedback("c1")
        assert time.monotonic() - started < 0.5
    finally:
        store.close()
        hung.close()


@pytest.mark.parametrize("folder", ["p%41", "a#b", "q?x"])
def test_a_store_whose_path_has_uri_characters_opens_read_only_too(tmp_path, folder):
    # Read-only opens go through a file: URI, which SQLite percent-decodes ('%41' is 'A').
    from recommender.events.sqlite import connect

    path = tmp_path / folder / "events.sqlite3"
    path.parent.mkdir()
    store = EventStore(path)
    store.add([Event("c1", "a0")])
    store.close()
    connection = connect(path, read_only=True)
    assert connection.execute("SELECT COUNT(*) FROM events").fetchone() == (1,)
    connection.close()
