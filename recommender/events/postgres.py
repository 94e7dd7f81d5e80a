"""The PostgreSQL event store: one database shared by every worker of several API hosts.

The same three tables as the SQLite file (:mod:`.sqlite`): ``events``, ``answers``,
``erasures``, created on first use. Each process keeps a small pool of connections
(psycopg 3, ``psycopg_pool``), opened on first use (so never shared across a fork).

Guarantees, as for SQLite:

- An event is committed (``synchronous_commit`` on: flushed to the server's disk) before
  :meth:`add` returns, so before the API acknowledges it.
- Ids grow in commit order: writers of events and erasures take one transaction-level
  advisory lock, so no event can be committed with an id below one already read.
  Training records the newest id it read, and serving counts only events above it: a
  later commit with a lower id would be neither trained on nor served.
- Every read sees every write committed before it began, on any host: serving reads a
  customer's rows (and their latest erasure) in one indexed query per request that
  needs them, so an event posted to host A shapes the very next answer at host B. (No
  notification is awaited: a notification can arrive after the next request does.)
- While the database cannot be reached every call raises
  :class:`~recommender.events.EventStoreUnavailable` (the API answers 503) within
  ``WAIT_SECONDS`` (then at once for ``FAIL_FAST_SECONDS``). A connection that broke
  while idle (a restarted server) is replaced and the call tried once more on a fresh
  one, unless it broke while committing (then whether it committed is unknown, and the
  caller is told it failed: never an acknowledgement without a commit).
- Recovery takes about ``FAIL_FAST_SECONDS`` after the server answers again. The pool's
  own reconnection backs off exponentially (1, 2, 4, 8 s ...), so after an outage of
  several seconds it could keep a worker answering 503 for as long again. Instead, once
  the pool has timed out while its connection attempts failed, the next call past the
  fail-fast window connects directly, and if that succeeds, replaces the pool.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..weights import DEFAULT_EVENT_WEIGHTS, FEEDBACK_TYPES, NOT_INTERESTED
from .base import (
    EVENT_COLUMNS,
    INSERT_EVENTS,
    STORED_UNDER_KEY,
    EventStore,
    EventStoreUnavailable,
    answer_from_row,
    feedback_from_rows,
    insert_rows,
    redacted,
    refuse_reused_keys,
    register_backend,
)
from .records import ITEM_SEPARATOR, AnswerRecord, CustomerFeedback, Erasure, Event, customer_key

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id       TEXT             NOT NULL,
    item_id           TEXT             NOT NULL,
    event_type        TEXT             NOT NULL,
    quantity          DOUBLE PRECISION NOT NULL,
    timestamp         BIGINT           NOT NULL,
    received_at       BIGINT           NOT NULL,
    recommendation_id TEXT
);
-- A database from before 2026-12-05 gains the key. Not ADD COLUMN IF NOT EXISTS: that takes the
-- table's strongest lock before it looks, so every worker's start (and every recovery) would
-- queue all reads of events behind any long one, such as training's.
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'events'::regclass AND attname = 'idempotency_key' AND NOT attisdropped) THEN
        ALTER TABLE events ADD COLUMN idempotency_key TEXT;
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS events_by_customer ON events (customer_id, id);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_idempotency_key ON events (customer_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS rejections ON events (customer_id) WHERE event_type = 'not_interested';
CREATE TABLE IF NOT EXISTS answers (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recommendation_id TEXT   NOT NULL,
    customer_id       TEXT,
    endpoint          TEXT   NOT NULL,
    experiment        TEXT,
    variant           TEXT,
    model_version     TEXT   NOT NULL,
    items             TEXT   NOT NULL,
    served_at         BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_by_customer ON answers (customer_id);
CREATE TABLE IF NOT EXISTS erasures (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_key TEXT   NOT NULL,
    erased_at    BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS erasures_by_key ON erasures (customer_key, id);
"""
# Advisory lock keys (any two fixed numbers): one serialises the schema's creation by
# workers starting together, the other the writers of events and erasures (ids in commit order).
_SCHEMA_LOCK, _WRITE_LOCK = 7_264_001, 7_264_002
_ANSWER_COLUMNS = "recommendation_id, customer_id, endpoint, experiment, variant, model_version, items, served_at"
_FEEDBACK_QUERY = (
    "SELECT 0 AS part, id, item_id, event_type, quantity FROM events WHERE customer_id = %(customer)s AND (id > %(after)s OR event_type = %(rejection)s)"
    " UNION ALL SELECT 1, MAX(id), NULL, NULL, NULL FROM erasures WHERE customer_key = %(key)s ORDER BY part, id"
)
WAIT_SECONDS = 1.0  # how long a call waits for a connection before answering "unavailable"
FAIL_FAST_SECONDS = 1.0  # after that, calls answer "unavailable" at once for this long
POOL_SIZE = 8  # connections per process at most (one per serving thread is plenty)


@register_backend("postgresql")
class PostgresEventStore(EventStore):
    """The event store in the PostgreSQL database at ``url`` (a libpq URL)."""

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE, wait_seconds: float = WAIT_SECONDS):
        self.url = str(url)
        self.location = redacted(self.url)
        self.pool_size = pool_size
        self.wait_seconds = wait_seconds
        self._pool_lock = threading.Lock()
        self._pool_instance = None
        self._pool_pid: int | None = None
        self._schema_ready = False
        self._unreachable_until = 0.0
        self._diagnosed = False  # whether the one direct attempt that names a failure was made
        self._pool_timed_out = False  # timed out while failing to connect: it may be in its reconnection backoff
        self._failed_connects_seen = 0  # the pool's count of failed connection attempts, when last looked at
        self._probe_lock = threading.Lock()

    # -- connections ----------------------------------------------------------------
    def _pool(self):
        pool = self._pool_instance  # read once: another thread may replace it (set it to None) meanwhile
        if pool is not None and self._pool_pid == os.getpid():
            return pool
        from psycopg_pool import ConnectionPool

        with self._pool_lock:
            if self._pool_instance is None or self._pool_pid != os.getpid():
                # A forked child never uses its parent's pool (its threads did not cross the fork).
                self._pool_instance = ConnectionPool(
                    self.url, min_size=1, max_size=self.pool_size, open=False, timeout=self.wait_seconds,
                    kwargs={"autocommit": True, "connect_timeout": max(1, int(self.wait_seconds))},
                    name=f"events-{os.getpid()}",
                )
                self._pool_instance.open(wait=False)
                self._failed_connects_seen = 0
                if self._pool_pid != os.getpid():
                    self._probe_lock = threading.Lock()  # a copy made by fork may be held by a thread the child lacks
                self._pool_pid = os.getpid()
                self._schema_ready = False
            return self._pool_instance

    def _run(self, work: Callable[[Any], Any], *, write: bool = False):
        """``work(connection)`` on a pooled connection (in one transaction when ``write``),
        outages raised as :class:`EventStoreUnavailable`."""
        import psycopg
        from psycopg_pool import PoolClosed, PoolTimeout

        if time.monotonic() < self._unreachable_until:
            # Found unreachable a moment ago: answer at once rather than hold every request
            # (and its worker) for WAIT_SECONDS while the pool reconnects in the background.
            raise EventStoreUnavailable(f"event store {self.location} unreachable; retry shortly")
        if self._pool_timed_out:
            self._replace_pool_once_reachable()
        for attempt in (1, 2):
            pool = self._pool()
            try:
                done, result = self._attempt(pool, work, write, retry_if_stale=attempt == 1)
            except PoolClosed:
                if attempt == 1:  # replaced by another thread under this call: use the new one
                    continue
                raise EventStoreUnavailable(f"event store {self.location} unavailable: connection pool replaced") from None
            except PoolTimeout as error:
                # Never connected from this process: most likely a wrong address, role or password,
                # which the pool only logs. One direct attempt, once per process, names it (a store
                # that worked and went down is not held up by it); the fail-fast window starts after it.
                reason = None
                if not self._schema_ready and not self._diagnosed:
                    self._diagnosed = True
                    reason = self._why_no_connection()
                # Renew the pool only when it is failing to connect: a database that is up but
                # slow to answer must not also get a fresh set of connections every second.
                failed_connects = pool.get_stats().get("connections_errors", 0)
                # Only about the pool in use: another thread may have replaced this one meanwhile.
                if pool is self._pool_instance and failed_connects > self._failed_connects_seen:
                    self._pool_timed_out, self._failed_connects_seen = True, failed_connects
                self._unreachable_until = time.monotonic() + FAIL_FAST_SECONDS
                raise EventStoreUnavailable(f"event store {self.location} unavailable: {reason or error}") from error
            except psycopg.OperationalError as error:
                raise EventStoreUnavailable(f"event store {self.location} unavailable: {error}") from error
            if done:
                return result
            # A connection broke before anything was committed (most often: one the pool held
            # across a server restart). Its idle siblings are as stale: the pool tests them
            # and drops the broken ones, then one more try on a fresh connection.
            log.warning("event store connection to %s broke; trying a fresh one", self.location)
            pool.check()
        raise AssertionError("unreachable")  # pragma: no cover - the second attempt returns or raises

    def _replace_pool_once_reachable(self) -> None:
        """After the pool timed out: connect directly (one thread at a time; the others are
        answered "unavailable" at once). If the server answers, the old pool is only waiting
        out its backoff, so a new pool replaces it; if not, another fail-fast window."""
        if self._pool_pid != os.getpid():  # a forked child opens its own pool anyway (and its lock may be a copy held)
            self._pool_timed_out = False
            return
        if not self._probe_lock.acquire(blocking=False):
            raise EventStoreUnavailable(f"event store {self.location} unreachable; retry shortly")
        try:
            if not self._pool_timed_out:  # another thread has just replaced it
                return
            reason = self._why_no_connection()
            if reason is not None:
                self._unreachable_until = time.monotonic() + FAIL_FAST_SECONDS
                raise EventStoreUnavailable(f"event store {self.location} unavailable: {reason}")
            with self._pool_lock:
                stale, self._pool_instance = self._pool_instance, None
            if stale is not None:
                # Closing waits for the pool's threads; no request need wait for that.
                threading.Thread(target=stale.close, name="events-pool-close", daemon=True).start()
            self._pool_timed_out = False
            log.warning("event store %s answers again; its connections are renewed", self.location)
        finally:
            self._probe_lock.release()

    def _why_no_connection(self) -> str | None:
        """The server's or the network's own words for why a connection fails (None if one succeeds)."""
        import psycopg

        try:
            psycopg.connect(self.url, connect_timeout=max(1, int(self.wait_seconds))).close()
        except psycopg.Error as error:
            return " ".join(str(error).split())
        return None

    def _attempt(self, pool, work, write: bool, *, retry_if_stale: bool) -> tuple[bool, Any]:
        """(True, result), or (False, None) when the connection was found broken before
        anything was committed and ``retry_if_stale``."""
        import psycopg

        with pool.connection(timeout=self.wait_seconds) as connection:
            committing = False
            try:
                if not self._schema_ready:
                    self._create_schema(connection)
                if not write:
                    return True, work(connection)
                with connection.transaction():
                    result = work(connection)
                    committing = True  # leaving the block commits
                return True, result
            except psycopg.OperationalError:
                if retry_if_stale and connection.broken and not committing:
                    return False, None
                raise

    def _create_schema(self, connection) -> None:
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            connection.execute(SCHEMA)
        self._schema_ready = True

    def close(self) -> None:
        """Close this process's pool (a later call opens a new one)."""
        with self._pool_lock:
            if self._pool_instance is not None and self._pool_pid == os.getpid():
                self._pool_instance.close()
            self._pool_instance = None

    # -- events ---------------------------------------------------------------------
    def add(self, events: Iterable[Event]) -> int:
        events = list(events)
        rows = insert_rows(events, int(time.time()))
        if not rows:
            return 0
        stored = 0

        def write(connection) -> None:
            nonlocal stored
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITE_LOCK,))
            with connection.cursor() as cursor:
                cursor.executemany(INSERT_EVENTS.format("%s"), rows)
                stored = cursor.rowcount  # psycopg sums executemany's rows: those not skipped
            if stored < len(rows):  # some were retries: each must be the event stored under its key
                refuse_reused_keys(events, lambda customer, key: connection.execute(STORED_UNDER_KEY.format("%s"), (customer, key)).fetchone())

        self._run(write, write=True)
        return stored

    def for_customer(self, customer_id: str, *, after_id: int = 0) -> list[Event]:
        rows = self._run(lambda connection: connection.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE customer_id = %s AND id > %s ORDER BY id", (customer_id, after_id)
        ).fetchall())
        return [Event(*row) for row in rows]

    def customer_feedback(
        self, customer_id: str, event_weights: Mapping[str, float] = DEFAULT_EVENT_WEIGHTS, *, after_id: int = 0
    ) -> CustomerFeedback:
        parameters = {"customer": customer_id, "after": after_id, "rejection": NOT_INTERESTED, "key": customer_key(customer_id)}
        rows = self._run(lambda connection: connection.execute(_FEEDBACK_QUERY, parameters).fetchall())
        erasure_id = rows[-1][1] or 0  # the last row: the erasure list's, always there
        return feedback_from_rows((row[1:] for row in rows[:-1]), after_id, event_weights, erasure_id)

    def count(self) -> int:
        return int(self._run(lambda connection: connection.execute("SELECT COUNT(*) FROM events").fetchone()[0]))

    def feedback_events(self, *, since: int = 0, until: int | None = None, types: Sequence[str] = (*FEEDBACK_TYPES, "purchase")) -> list[Event]:
        rows = self._run(lambda connection: connection.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE event_type = ANY(%s) AND timestamp <= %s "
            "AND (timestamp >= %s OR recommendation_id IS NOT NULL) ORDER BY timestamp, id",
            (list(types), until if until is not None else 2**62, since),
        ).fetchall())
        return [Event(*row) for row in rows]

    def event_rows(self, *, after_id: int = 0) -> list[tuple]:
        return self._run(lambda connection: connection.execute(
            "SELECT id, customer_id, item_id, event_type, quantity, timestamp FROM events WHERE id > %s ORDER BY id", (after_id,)
        ).fetchall())

    # -- the answer log -------------------------------------------------------------
    def add_answers(self, answers: Sequence[AnswerRecord]) -> int:
        if not answers:
            return 0
        logged = [0]

        def write(connection) -> None:
            # Not waiting for the disk: the log accepts losing its last moments (as SQLite's NORMAL).
            connection.execute("SET LOCAL synchronous_commit = off")
            first = min(a.served_at for a in answers)
            erased = dict(connection.execute(
                "SELECT customer_key, MAX(erased_at) FROM erasures WHERE erased_at >= %s GROUP BY customer_key", (first,)
            ).fetchall())
            kept = answers
            if erased:
                kept = [a for a in answers if a.customer_id is None or erased.get(customer_key(a.customer_id), -1) < a.served_at]
            rows = [(rid, customer, endpoint, experiment, variant, version, ITEM_SEPARATOR.join(items), int(served))
                    for rid, customer, endpoint, experiment, variant, version, items, served in kept]
            if rows:
                # COPY rather than executemany: 0.9-1.4 µs of the API worker's CPU a row against
                # 8.6-9.4, and 8-13.5 µs of the database server's against 19-24 (two writers of
                # 200,000 rows each, research/answer_log_cost.py --postgres --batches 100).
                with connection.cursor() as cursor, cursor.copy(f"COPY answers ({_ANSWER_COLUMNS}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            logged[0] = len(rows)

        self._run(write, write=True)
        return logged[0]

    def answers(self, *, experiment: str | None = None, since: int = 0, until: int | None = None) -> list[AnswerRecord]:
        query = f"SELECT {_ANSWER_COLUMNS} FROM answers WHERE served_at >= %s AND served_at <= %s"
        parameters: tuple = (since, until if until is not None else 2**62)
        if experiment is not None:
            query, parameters = query + " AND experiment = %s", (*parameters, experiment)
        rows = self._run(lambda connection: connection.execute(query + " ORDER BY served_at, id", parameters).fetchall())
        return [answer_from_row(row) for row in rows]

    def answer(self, recommendation_id: str) -> AnswerRecord | None:
        row = self._run(lambda connection: connection.execute(
            f"SELECT {_ANSWER_COLUMNS} FROM answers WHERE recommendation_id = %s", (recommendation_id,)
        ).fetchone())
        return None if row is None else answer_from_row(row)

    def prune_answers(self, before: int) -> int:
        return self._run(lambda connection: connection.execute("DELETE FROM answers WHERE served_at < %s", (before,)).rowcount, write=True)

    # -- forgetting -----------------------------------------------------------------
    def forget(self, customer_id: str) -> Erasure:
        """As SQLite's, in one transaction. The deleted rows' bytes stay in the table's
        pages until VACUUM (autovacuum) reuses them: run ``VACUUM events, answers`` where
        an erasure must leave no trace on disk at once."""
        key, erased_at = customer_key(customer_id), int(time.time())

        def write(connection) -> Erasure:
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITE_LOCK,))
            events_deleted = connection.execute("DELETE FROM events WHERE customer_id = %s", (customer_id,)).rowcount
            answers_deleted = connection.execute("DELETE FROM answers WHERE customer_id = %s", (customer_id,)).rowcount
            erasure_id = connection.execute(
                "INSERT INTO erasures (customer_key, erased_at) VALUES (%s, %s) RETURNING id", (key, erased_at)
            ).fetchone()[0]
            return Erasure(key, erasure_id, erased_at, events_deleted, answers_deleted)

        return self._run(write, write=True)

    def erasures(self, *, after_id: int = 0) -> list[tuple[int, str, int]]:
        return self._run(lambda connection: connection.execute(
            "SELECT id, customer_key, erased_at FROM erasures WHERE id > %s ORDER BY id", (after_id,)
        ).fetchall())

