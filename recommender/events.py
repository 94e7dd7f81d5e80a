"""The event store: purchases (and other events) received after the model was trained.

Serving writes every event here before acknowledging it, and reads a customer's
events back on each request so that a purchase counts at once, in every worker
process, without retraining. Training reads the whole store (:func:`read_events`)
to merge it with the purchase files, so the next model learns from it too.

One SQLite file in WAL mode: many readers and one writer at a time across
processes, and ``synchronous=FULL`` so an acknowledged event survives a power cut.
Every query is parameterised.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .event_index import ChangeSignal, CustomersWithEvents
from .purchases import PurchaseLog
from .weights import DEFAULT_EVENT_WEIGHTS, weigh_event, weigh_events

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id TEXT    NOT NULL,
    item_id     TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    quantity    REAL    NOT NULL,
    timestamp   INTEGER NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_customer ON events (customer_id, id);
"""
# Writers from other worker processes hold the lock briefly; wait rather than fail.
_BUSY_TIMEOUT_MS = 10_000
log = logging.getLogger(__name__)


class EventStoreUnavailable(sqlite3.OperationalError):
    """The store cannot take events now; like SQLite's own errors (a locked or full disk),
    an outage to retry, which the API answers with 503."""


@dataclass(frozen=True)
class Event:
    """One stored event; ``timestamp`` is epoch seconds (UTC)."""

    customer_id: str
    item_id: str
    event_type: str = "purchase"
    quantity: float = 1.0
    timestamp: int = 0

    def to_dict(self) -> dict:
        return {
            "customer_id": self.customer_id,
            "item_id": self.item_id,
            "event_type": self.event_type,
            "quantity": self.quantity,
            "timestamp": self.timestamp,
        }


class EventStore:
    """Durable append-only events in one SQLite file, safe across threads and processes.

    Each thread of each process keeps its own connection (sqlite3 connections must
    not cross threads, nor survive a fork), opened on first use and then reused.
    Which customers have events at all is known without a query
    (:mod:`recommender.event_index`), so most reads never reach the database.
    """

    def __init__(self, path):
        self.path = Path(path)
        self._local = threading.local()
        self._schema_ready = False
        # From the resolved path: SQLite follows a symlink for its -wal and -shm files, and a
        # store opened through a link must share the signal of the one opened directly.
        resolved = self.path.resolve()
        self.signal = ChangeSignal(resolved.with_name(resolved.name + "-signal"))
        self._customers_with_events = CustomersWithEvents(self.signal)

    # -- connections ----------------------------------------------------------------
    def _connection_and_file(self) -> tuple[sqlite3.Connection, tuple[int, int] | None]:
        """For the event index: this thread's connection and which file it reads."""
        connection = self._connection()
        return connection, self._local.identity

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is not None and self._local.pid == os.getpid():
            # A stat per query (customers without events need none): a database deleted or
            # replaced while we serve would otherwise take acknowledged events into a file that
            # no other worker reads. Every connection moves to the file now at the path.
            if _identity(self.path) == self._local.identity:
                return connection
            log.warning("%s was deleted or replaced while in use: opening the file now at that path", self.path)
            connection.close()
            self._schema_ready = False
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self._schema_ready:
            self._prepare()
        connection = _connect(self.path)
        connection.execute("PRAGMA synchronous = FULL")
        self._local.connection = connection
        self._local.pid = os.getpid()
        self._local.identity = _identity(self.path)
        return connection

    def _prepare(self) -> None:
        """Switch the file to WAL and create the schema, one process at a time.

        Both need locks that SQLite refuses at once, without waiting for its busy timeout,
        when another connection is doing the same (a journal-mode change needs the only
        lock on the file): several workers opening a new store together got "database is
        locked" on their first write. So they take turns, under an exclusive lock on the
        store's folder (never on the database file itself: SQLite's own locks live there,
        and closing any other descriptor of that file would drop them). After the first
        time this is quick: the mode and the schema are kept in the file.
        """
        with _exclusive_lock(self.path.parent):
            connection = _connect(self.path)
            try:
                connection.execute("PRAGMA journal_mode = WAL")
                connection.executescript(_SCHEMA)
            finally:
                connection.close()
        self._schema_ready = True

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None and self._local.pid == os.getpid():
            connection.close()
        self._local.connection = None

    # -- writing --------------------------------------------------------------------
    def add(self, events: Iterable[Event]) -> int:
        """Store ``events`` in one transaction, durably, and return how many were stored."""
        received_at = int(time.time())
        rows = [(e.customer_id, e.item_id, e.event_type, float(e.quantity), int(e.timestamp), received_at) for e in events]
        if not rows:
            return 0
        if not self.signal.writable():
            # Stored events that other processes cannot be told about would be acknowledged
            # and then missing from their answers: refuse (the API answers 503, retry).
            raise EventStoreUnavailable(f"{self.signal.path} cannot be used, so other processes would not see new events")
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.executemany(
                "INSERT INTO events (customer_id, item_id, event_type, quantity, timestamp, received_at) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            connection.execute("COMMIT")
        except BaseException:
            # Also after a failed COMMIT (disk full, I/O error): a connection left inside the
            # transaction would hold the write lock and read its own uncommitted rows.
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        if not self.signal.announce():  # before returning, so before the API acknowledges the events
            log.error("events stored, but %s could not be written: other processes see them after the next write", self.signal.path)
        return len(rows)

    # -- reading --------------------------------------------------------------------
    def for_customer(self, customer_id: str, *, after_id: int = 0) -> list[Event]:
        """The customer's events, oldest first; ``after_id`` skips those already trained on."""
        if not self._customers_with_events.may_have_events(customer_id, after_id, self._connection_and_file):
            return []
        cursor = self._connection().execute(
            "SELECT customer_id, item_id, event_type, quantity, timestamp FROM events"
            " WHERE customer_id = ? AND id > ? ORDER BY id",
            (customer_id, after_id),
        )
        return [Event(*row) for row in cursor]

    def weighted_items(
        self, customer_id: str, event_weights: Mapping[str, float] = DEFAULT_EVENT_WEIGHTS, *, after_id: int = 0
    ) -> list[tuple[str, float]]:
        """(item_id, weight) pairs for :meth:`recommender.model.Model.recommend`'s ``new_events``."""
        if not self._customers_with_events.may_have_events(customer_id, after_id, self._connection_and_file):
            return []  # the serving hot path: most customers have no events since training
        cursor = self._connection().execute(
            "SELECT item_id, event_type, quantity FROM events WHERE customer_id = ? AND id > ? ORDER BY id",
            (customer_id, after_id),
        )
        weighed = ((item_id, weigh_event(event_type, quantity, event_weights)) for item_id, event_type, quantity in cursor)
        return [(item_id, weight) for item_id, weight in weighed if weight > 0]

    def count(self) -> int:
        """How many events the store holds."""
        return int(self._connection().execute("SELECT COUNT(*) FROM events").fetchone()[0])



def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a batch is one transaction.
    connection = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=True)
    connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    return connection


@contextlib.contextmanager
def _exclusive_lock(folder: Path):
    """An exclusive advisory lock on ``folder`` (flock works on a folder's descriptor), held for the block."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _identity(path: Path) -> tuple[int, int] | None:
    """Which file is at ``path`` now (device, inode); None when there is none."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


def read_events(path, *, after_id: int = 0) -> dict[str, np.ndarray]:
    """Every stored event as parallel arrays, for training to merge with purchase files.

    Keys: ``id`` (int64), ``customer_id``, ``item_id``, ``event_type`` (unicode),
    ``quantity`` (float64), ``timestamp`` (int64 epoch seconds). A missing store reads
    as no events. Record ``id.max()`` in the model manifest as ``data.events_through_id``
    so serving does not count those events twice.
    """
    columns = ("id", "customer_id", "item_id", "event_type", "quantity", "timestamp")
    path = Path(path)
    rows: list[tuple] = []
    if path.exists():
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=_BUSY_TIMEOUT_MS / 1000)
        try:
            rows = connection.execute(f"SELECT {', '.join(columns)} FROM events WHERE id > ? ORDER BY id", (after_id,)).fetchall()
        except sqlite3.OperationalError as error:
            if "no such table" not in str(error):
                raise
        finally:
            connection.close()
    values = list(zip(*rows)) if rows else [()] * len(columns)
    return {
        "id": np.asarray(values[0], dtype=np.int64),
        "customer_id": np.asarray(values[1], dtype=str),
        "item_id": np.asarray(values[2], dtype=str),
        "event_type": np.asarray(values[3], dtype=str),
        "quantity": np.asarray(values[4], dtype=np.float64),
        "timestamp": np.asarray(values[5], dtype=np.int64),
    }


def merge_stored_events(log: PurchaseLog, path, event_weights: Mapping[str, float] = DEFAULT_EVENT_WEIGHTS) -> tuple[PurchaseLog, int]:
    """``log`` plus every event in the store at ``path``; returns it and the last event id merged.

    New customers and items extend the vocabularies (existing indices keep), so items
    first seen through the API are learned by the next training run. Events of a type
    without a weight are left out, as the loader would reject them.
    """
    events = read_events(path)
    if len(events["id"]) == 0:
        return log, 0
    weights = weigh_events(events["event_type"], events["quantity"], event_weights)
    keep = weights > 0
    customers = log.customers.extended(events["customer_id"][keep].tolist())
    items = log.items.extended(events["item_id"][keep].tolist())
    timestamp = None
    if log.timestamp is not None:
        timestamp = np.concatenate([log.timestamp, events["timestamp"][keep]])
    merged = PurchaseLog(
        customers,
        items,
        np.concatenate([log.customer_index, customers.lookup(events["customer_id"][keep].tolist()).astype(np.int32)]),
        np.concatenate([log.item_index, items.lookup(events["item_id"][keep].tolist()).astype(np.int32)]),
        np.concatenate([log.weight, weights[keep].astype(np.float32)]),
        timestamp,
        dict(log.skipped),
        list(log.notes),
    )
    return merged, int(events["id"].max())
