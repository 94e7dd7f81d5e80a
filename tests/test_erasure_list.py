"""The erasure list a worker keeps for answering while the event store is down (serving.erasure_list).

A real SQLite store gives the list; the outage itself, with two real hosts and a stopped
PostgreSQL, is in tests/test_hosts.py.
"""

from __future__ import annotations

import time

from recommender.events import NO_FEEDBACK, EventStoreUnavailable, open_event_store
from serving.erasure_list import NEVER_READ, KnownErasures


def test_an_erased_customer_stays_erased_while_the_store_cannot_be_read(tmp_path):
    store = open_event_store(tmp_path / "events.sqlite3")
    first = store.forget("c1")
    known = KnownErasures(lambda after_id: store.erasures(after_id=after_id), refresh_seconds=3600)
    known.refresh()
    assert known.during_outage("c1").erasure_id == first.erasure_id
    assert known.during_outage("c2") is NO_FEEDBACK  # not erased: answered from the model alone
    again, other = store.forget("c1"), store.forget("c2")
    known.refresh()  # reads only what came after the last erasure it read
    assert known.during_outage("c1").erasure_id == again.erasure_id
    assert known.during_outage("c2").erasure_id == other.erasure_id
    outage = known.during_outage("c1")
    assert outage.new_events == [] and outage.rejected == []  # events apply again once the store is back
    known.close()
    store.close()


def test_a_worker_that_never_read_the_list_answers_everyone_without_training_history():
    def unavailable(after_id):
        raise EventStoreUnavailable("the event store is down")

    known = KnownErasures(unavailable, refresh_seconds=3600)
    time.sleep(0.2)  # the background thread's first read, which fails
    assert known.during_outage("anyone").erasure_id == NEVER_READ
    known.close()


def test_the_background_thread_reads_the_list_without_being_asked(tmp_path):
    store = open_event_store(tmp_path / "events.sqlite3")
    erasure = store.forget("c1")
    known = KnownErasures(lambda after_id: store.erasures(after_id=after_id), refresh_seconds=0.05)
    later = store.forget("c2")
    deadline = time.monotonic() + 5
    while known.during_outage("c2") is NO_FEEDBACK or known.during_outage("c2").erasure_id == NEVER_READ:
        assert time.monotonic() < deadline, "the list was not refreshed in 5 s"
        time.sleep(0.02)
    assert known.during_outage("c1").erasure_id == erasure.erasure_id
    assert known.during_outage("c2").erasure_id == later.erasure_id
    known.close()
    store.close()


def test_a_store_replaced_or_restored_is_read_whole_again(tmp_path):
    """Ids start again in a new or restored store: reading on from the old newest id would miss
    its erasures. The row last read is checked to be still there first."""
    old, new = open_event_store(tmp_path / "old.sqlite3"), open_event_store(tmp_path / "new.sqlite3")
    for customer in ("a", "b", "c"):
        old.forget(customer)
    erased_in_new = new.forget("x")
    serving = [old]
    known = KnownErasures(lambda after_id: serving[0].erasures(after_id=after_id), refresh_seconds=3600)
    known.refresh()
    assert known.during_outage("a").erasure_id == 1 and known.during_outage("x") is NO_FEEDBACK
    serving[0] = new  # the file at the path is now another store
    known.refresh()
    assert known.during_outage("x").erasure_id == erased_in_new.erasure_id
    assert known.during_outage("a") is NO_FEEDBACK  # the list is the new store's
    known.close()
    old.close()
    new.close()


def test_a_store_replaced_by_an_empty_one_is_then_read_from_its_first_erasure(tmp_path):
    old, new = open_event_store(tmp_path / "old.sqlite3"), open_event_store(tmp_path / "new.sqlite3")
    for customer in ("a", "b", "c"):
        old.forget(customer)
    serving = [old]
    known = KnownErasures(lambda after_id: serving[0].erasures(after_id=after_id), refresh_seconds=3600)
    known.refresh()
    serving[0] = new  # replaced by a store with no erasure yet
    known.refresh()
    assert known.during_outage("a") is NO_FEEDBACK
    reads = []
    serving[0] = type("Counting", (), {"erasures": lambda self, after_id: reads.append(after_id) or new.erasures(after_id=after_id)})()
    known.refresh()
    assert reads == [0]  # one read from the start, not a whole reread on every refresh
    first = new.forget("x")
    known.refresh()
    assert known.during_outage("x").erasure_id == first.erasure_id
    known.close()
    old.close()
    new.close()
