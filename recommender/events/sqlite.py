"""The SQLite file under the event store: schema, migrations, and one connection per thread.

One file in WAL mode: many readers and one writer at a time across processes. The
tables: ``events`` (what customers did and were shown, appended), ``answers`` (every
answer served, logged in batches) and ``erasures`` (the customers forgotten on request,
by key). Stores created before answers were logged gain the new column and tables, stores
from before 2026-12-05 lose the log's index by customer and gain the events' idempotency
key, the first time they are opened.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import urllib.parse
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id       TEXT    NOT NULL,
    item_id           TEXT    NOT NULL,
    event_type        TEXT    NOT NULL,
    quantity          REAL    NOT NULL,
    timestamp         INTEGER NOT NULL,
    received_at       INTEGER NOT NULL,
    recommendation_id TEXT,
    idempotency_key   TEXT
);
CREATE INDEX IF NOT EXISTS events_by_customer ON events (customer_id, id);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_idempotency_key ON events (customer_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS rejections ON events (customer_id) WHERE event_type = 'not_interested';
CREATE TABLE IF NOT EXISTS answers (
    id                INTEGER PRIMARY KEY,
    recommendation_id TEXT    NOT NULL,
    customer_id       TEXT,
    endpoint          TEXT    NOT NULL,
    experiment        TEXT,
    variant           TEXT,
    model_version     TEXT    NOT NULL,
    items             TEXT    NOT NULL,
    served_at         INTEGER NOT NULL
);
-- No index: every row written costs each index an insert at a random place (15 -> 9.5 µs a
-- row measured with three; 10.5-10.8 µs with one by customer once two workers' log held 400,000
-- rows, 2.3 µs with none), and attribution reads the log whole. Rows arrive in time order, so the
-- id follows served_at closely enough for pruning. An erasure scans the log (store.forget).
CREATE TABLE IF NOT EXISTS erasures (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_key TEXT    NOT NULL,
    erased_at    INTEGER NOT NULL
);
"""
# Writers from other worker processes hold the lock briefly; wait rather than fail.
BUSY_TIMEOUT_MS = 10_000
log = logging.getLogger(__name__)


def connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection that waits for other writers; we issue BEGIN/COMMIT ourselves
    (isolation_level=None), so a batch is one transaction."""
    # A URI's path is percent-decoded by SQLite: a file named with '%' or '?' or '#' must be quoted.
    target = f"file:{urllib.parse.quote(str(path))}?mode=ro" if read_only else str(path)
    connection = sqlite3.connect(target, uri=read_only, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=True)
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return connection


def not_a_database(path: Path) -> str | None:
    """SQLite's reason when the file at ``path`` is no SQLite database (a purchase CSV given
    for the store), found by reading its header without writing anything; None when it is one."""
    connection = connect(path, read_only=True)
    try:
        connection.execute("PRAGMA schema_version")
    except sqlite3.DatabaseError as error:
        if error.sqlite_errorcode != sqlite3.SQLITE_NOTADB:
            raise
        return str(error)
    finally:
        connection.close()
    return None


def identity(path: Path) -> tuple[int, int] | None:
    """Which file is at ``path`` now (device, inode); None when there is none."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


@contextlib.contextmanager
def exclusive_lock(folder: Path):
    """An exclusive advisory lock on ``folder`` (flock works on a folder's descriptor), held for the block."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def prepare(path: Path) -> None:
    """Switch the file to WAL, create the schema and migrate older stores, one process at a time.

    Both need locks that SQLite refuses at once, without waiting for its busy timeout,
    when another connection is doing the same (a journal-mode change needs the only
    lock on the file): several workers opening a new store together got "database is
    locked" on their first write. So they take turns, under an exclusive lock on the
    store's folder (never on the database file itself: SQLite's own locks live there,
    and closing any other descriptor of that file would drop them). After the first
    time this is quick: the mode and the schema are kept in the file.
    """
    with exclusive_lock(path.parent):
        connection = connect(path)
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            columns = {row[1] for row in connection.execute("PRAGMA table_info(events)")}
            if columns and "recommendation_id" not in columns:  # a store from before answers were traced
                connection.execute("ALTER TABLE events ADD COLUMN recommendation_id TEXT")
            if columns and "idempotency_key" not in columns:  # a store from before retries were recognised
                connection.execute("ALTER TABLE events ADD COLUMN idempotency_key TEXT")
            connection.executescript(SCHEMA)
            if connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'answers_by_customer'").fetchone():
                connection.execute("PRAGMA secure_delete = ON")  # its freed pages held every answered customer's id
                connection.execute("DROP INDEX answers_by_customer")  # the log's index until 2026-12-05
        finally:
            connection.close()


class Connections:
    """This thread's connection to the file at ``path`` (sqlite3 connections must not cross
    threads, nor survive a fork), opened on first use, reused, and moved to the file now
    at the path when the one it reads was deleted or replaced."""

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()
        self._schema_ready = False

    def get(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is not None and self._local.pid == os.getpid():
            # A stat per query (customers without events need none): a database deleted or
            # replaced while we serve would otherwise take acknowledged events into a file that
            # no other worker reads. Every connection moves to the file now at the path.
            if identity(self.path) == self._local.identity:
                return connection
            log.warning("%s was deleted or replaced while in use: opening the file now at that path", self.path)
            connection.close()
            self._schema_ready = False
        try:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self._schema_ready:
                prepare(self.path)
                self._schema_ready = True
            connection = connect(self.path)
            identity_now = identity(self.path)
        except OSError as error:  # the folder or file cannot be made or read: an outage of the store, as SQLite's own errors are
            raise sqlite3.OperationalError(f"cannot open the event store {self.path}: {error.strerror} ({error.filename})") from error
        connection.execute("PRAGMA synchronous = FULL")
        self._local.connection = connection
        self._local.pid = os.getpid()
        self._local.identity = identity_now
        return connection

    def get_with_identity(self) -> tuple[sqlite3.Connection, tuple[int, int] | None]:
        """For the event index: this thread's connection and which file it reads."""
        connection = self.get()
        return connection, self._local.identity

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None and self._local.pid == os.getpid():
            connection.close()
        self._local.connection = None


@contextlib.contextmanager
def transaction(connection: sqlite3.Connection):
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any failure, also of the COMMIT itself
    (disk full, I/O error): a connection left inside the transaction would hold the
    write lock and read its own uncommitted rows."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
