"""Which customers have events, known without a query: fresh across stores and processes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recommender.events import Event, EventStore, EventStoreUnavailable
from recommender.events.index import ChangeSignal

ROOT = Path(__file__).resolve().parents[1]


def _statements(store: EventStore) -> list[str]:
    """Every SQL statement the store's connection runs from now on."""
    ran: list[str] = []
    store._connection().set_trace_callback(ran.append)
    return ran


def test_a_customer_without_events_costs_no_query_once_the_index_is_fresh(tmp_path):
    store = EventStore(tmp_path / "events.sqlite3")
    store.add([Event("c1", "a")])
    assert store.weighted_items("c1") == [("a", 1.0)]  # brings the index up to date
    ran = _statements(store)
    assert store.weighted_items("nobody") == [] and store.for_customer("nobody") == []
    assert ran == []
    assert store.weighted_items("c1") == [("a", 1.0)]
    assert len(ran) == 1 and "customer_id = 'c1'" in ran[0]


def test_an_event_added_through_another_store_is_seen_at_once(tmp_path):
    """Two stores on one file stand for two worker processes."""
    reader, writer = EventStore(tmp_path / "events.sqlite3"), EventStore(tmp_path / "events.sqlite3")
    assert reader.weighted_items("c1") == []
    writer.add([Event("c1", "a")])
    assert reader.weighted_items("c1") == [("a", 1.0)]
    writer.add([Event("c2", "b", "cart")])
    assert reader.weighted_items("c2") == [("b", 0.5)]
    assert reader.weighted_items("c1") == [("a", 1.0)]


def test_an_event_added_by_another_process_is_seen_at_once(tmp_path):
    path = tmp_path / "events.sqlite3"
    reader = EventStore(path)
    assert reader.weighted_items("c9") == []
    script = "import sys; from recommender.events import Event, EventStore; EventStore(sys.argv[1]).add([Event('c9', 'z', quantity=2.0)])"
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, cwd=ROOT)
    assert reader.weighted_items("c9") == [("z", 2.0)]


def test_a_lower_cut_off_rebuilds_the_set(tmp_path):
    """A model trained on fewer events (an older one swapped back in) needs more customers."""
    store = EventStore(tmp_path / "events.sqlite3")
    store.add([Event("old", "a"), Event("new", "b")])
    assert store.weighted_items("old", after_id=1) == []  # event 1 was trained on
    assert store.weighted_items("old", after_id=0) == [("a", 1.0)]
    assert store.weighted_items("new", after_id=1) == [("b", 1.0)]


def test_every_write_changes_the_signal(tmp_path):
    store = EventStore(tmp_path / "events.sqlite3")
    seen = {store.signal.read()}
    for k in range(20):
        store.add([Event(f"c{k}", "a")])
        value = store.signal.read()
        assert value not in seen
        seen.add(value)
    assert store.signal.path == (tmp_path / "events.sqlite3-signal").resolve()
    assert store.signal.path.stat().st_size == ChangeSignal.SIZE


def test_without_a_usable_signal_every_read_asks_the_database(tmp_path):
    reader, writer = EventStore(tmp_path / "events.sqlite3"), EventStore(tmp_path / "events.sqlite3")
    (tmp_path / "a folder").mkdir()
    reader.signal.path = tmp_path / "a folder"  # cannot be mapped
    assert reader.weighted_items("c1") == []
    writer.add([Event("c1", "a")])
    assert reader.signal.read() is None
    assert reader.weighted_items("c1") == [("a", 1.0)]


def test_a_writer_without_a_usable_signal_stores_nothing(tmp_path):
    """Acknowledged events that other processes are never told about would be lost to them."""
    (tmp_path / "events.sqlite3-signal").mkdir()  # cannot be mapped
    store = EventStore(tmp_path / "events.sqlite3")
    with pytest.raises(EventStoreUnavailable, match="events.sqlite3-signal"):
        store.add([Event("c1", "a")])
    assert store.count() == 0


def test_a_signal_file_deleted_while_serving_is_mapped_again(tmp_path):
    """A clean-up removes the file; a restarted worker creates a new one and writes there."""
    path = tmp_path / "events.sqlite3"
    old_worker = EventStore(path)
    assert old_worker.weighted_items("c1") == []
    old_worker.signal.path.unlink()
    script = "import sys; from recommender.events import Event, EventStore; EventStore(sys.argv[1]).add([Event('c1', 'a')])"
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, cwd=ROOT)
    time.sleep(ChangeSignal.RECHECK_SECONDS)  # a reader looks at the file again at most this often
    assert old_worker.weighted_items("c1") == [("a", 1.0)]
    old_worker.add([Event("c2", "b")])  # and its own writes reach the new file's readers
    assert EventStore(path).weighted_items("c2") == [("b", 1.0)]


def test_a_truncated_signal_file_is_mapped_again_not_read_past_its_end(tmp_path):
    store = EventStore(tmp_path / "events.sqlite3")
    assert store.weighted_items("c1") == []
    os.truncate(store.signal.path, 0)  # reading the old mapping now would raise SIGBUS
    store.add([Event("c1", "a")])
    assert store.weighted_items("c1") == [("a", 1.0)]
    assert store.signal.path.stat().st_size == ChangeSignal.SIZE


def test_ids_starting_again_below_those_read_rebuild_the_set(tmp_path):
    """A backup restored into the live file: the next event gets an id the set has passed."""
    path, backup = tmp_path / "events.sqlite3", tmp_path / "backup.sqlite3"
    EventStore(backup).add([Event("b", "x")])
    store = EventStore(path)
    store.add([Event(f"c{k}", "x") for k in range(5)])
    assert store.weighted_items("nobody") == []  # the set has read ids 1 to 5
    with sqlite3.connect(backup) as source, sqlite3.connect(path) as target:
        source.backup(target)
    store.add([Event("new", "a")])  # id 2
    assert store.weighted_items("new") == [("a", 1.0)]


def test_a_store_opened_through_a_symlink_shares_the_signal(tmp_path):
    real, link = tmp_path / "data" / "events.sqlite3", tmp_path / "events.sqlite3"
    reader = EventStore(real)
    assert reader.weighted_items("c1") == []
    link.symlink_to(real)
    EventStore(link).add([Event("c1", "a")])
    assert reader.weighted_items("c1") == [("a", 1.0)]


def test_threads_sharing_one_store_all_see_each_acknowledged_event(tmp_path):
    """gthread workers: several threads race to bring one index up to date."""
    from concurrent.futures import ThreadPoolExecutor

    reader, writer = EventStore(tmp_path / "events.sqlite3"), EventStore(tmp_path / "events.sqlite3")
    writer.add([Event("first", "a")])  # id 1, so that every later event is past both cut-offs
    with ThreadPoolExecutor(max_workers=4) as pool:
        for k in range(100):
            writer.add([Event(f"c{k}", f"i{k}")])
            # Cut-offs 0 and 1 alternate between threads, so the set is rebuilt while others read it.
            seen = list(pool.map(lambda thread, k=k: reader.weighted_items(f"c{k}", after_id=thread % 2), range(8)))
            assert seen == [[(f"i{k}", 1.0)]] * 8, k


def test_a_store_whose_folder_does_not_exist_yet_still_signals_its_writes(tmp_path):
    path = tmp_path / "new folder" / "events.sqlite3"
    writer = EventStore(path)
    assert writer.weighted_items("c1") == []  # first use, before anything created the folder
    reader = EventStore(path)
    assert reader.weighted_items("c1") == []
    writer.add([Event("c1", "a")])
    assert reader.weighted_items("c1") == [("a", 1.0)]


def test_threads_remapping_a_deleted_signal_at_once_close_nothing_twice(tmp_path):
    """Each thread that finds the file gone must not close a descriptor another thread reopened."""
    from concurrent.futures import ThreadPoolExecutor

    store = EventStore(tmp_path / "events.sqlite3")
    store.add([Event("first", "a")])
    with ThreadPoolExecutor(max_workers=8) as pool:
        for k in range(30):
            store.signal.path.unlink()
            assert all(pool.map(lambda _: store.signal.writable(), range(8)))
            store.add([Event(f"c{k}", "a")])
            assert EventStore(tmp_path / "events.sqlite3").weighted_items(f"c{k}") == [("a", 1.0)]
    assert store.count() == 31
    ours = str(store.signal.path)  # files unlinked above show as "<path> (deleted)"
    open_signals = [fd for fd in os.listdir("/proc/self/fd") if os.path.realpath(f"/proc/self/fd/{fd}").startswith(ours)]
    assert len(open_signals) <= 2  # the store's own, and at most one from the last reader above


def test_a_database_deleted_while_serving_loses_no_later_event(tmp_path):
    """Every worker's connection moves to the new file, so what one acknowledges the others read."""
    path = tmp_path / "data" / "events.sqlite3"
    reader, writer = EventStore(path), EventStore(path)
    writer.add([Event("before", "a")])
    assert reader.weighted_items("before") == [("a", 1.0)]
    for leftover in path.parent.glob("events.sqlite3*"):  # the signal file too
        leftover.unlink()
    writer.add([Event("after", "b")])  # id 1 again, in the new file
    time.sleep(ChangeSignal.RECHECK_SECONDS)  # for the reader to notice the new signal file
    assert reader.weighted_items("after") == [("b", 1.0)]
    assert EventStore(path).count() == 1  # the new file holds the event acknowledged after the deletion
