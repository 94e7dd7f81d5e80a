"""The SQLite event store (the embedded default): what customers did and were shown since
the model was trained, in one file shared by the worker processes of one host.

Serving writes every event here before acknowledging it, and reads a customer's
events back on each request, so a purchase or a "not interested" counts at once, in
every worker process, without retraining. Serving also logs every answer here (in
batches, :mod:`recommender.events.answer_log`), so that impressions, clicks and
purchases can be attributed to the answer, variant and model that led to them.
Training reads the whole store (:mod:`recommender.events.training_data`) to merge it
with the purchase files, and its erasure list to leave forgotten customers out.

Every method takes and returns plain values (:mod:`recommender.events.records`);
every query is parameterised. ``synchronous=FULL`` for events: an acknowledged event
survives a power cut.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

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
    refuse_reused_keys,
    register_backend,
)
from .index import ChangeSignal, CustomersWithEvents
from .records import ITEM_SEPARATOR, NO_FEEDBACK, AnswerRecord, CustomerFeedback, Erasure, Event, customer_key
from .sqlite import BUSY_TIMEOUT_MS, Connections, transaction

log = logging.getLogger(__name__)
_ANSWER_COLUMNS = "recommendation_id, customer_id, endpoint, experiment, variant, model_version, items, served_at"
# Answers per INSERT statement: one statement steps once for all its rows. executemany steps,
# and gives the GIL up, once per row (the serving thread paid for the ping-pong), and one JSON
# array through json_each cost 5.5 µs of CPU a row against 3.1 µs this way (docs/benchmarks.md,
# "Serving", 2026-12-04 evening). 500 rows are 4,000 variables: SQLite before 3.32 allows 999.
_ANSWERS_PER_INSERT = 500 if sqlite3.sqlite_version_info >= (3, 32) else 120


@functools.lru_cache(maxsize=8)
def _insert_answers_statement(rows: int) -> str:
    return f"INSERT INTO answers ({_ANSWER_COLUMNS}) VALUES " + ",".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * rows)


def _logged_answers_of(connection, customer_id: str) -> tuple[tuple[int, str] | None, list[int]]:
    """The answer log's newest row then (id, recommendation id) and the ids of the customer's
    rows up to it, read without a write lock."""
    newest = connection.execute("SELECT id, recommendation_id FROM answers ORDER BY id DESC LIMIT 1").fetchone()
    if newest is None:
        return None, []
    return newest, [row[0] for row in connection.execute("SELECT id FROM answers WHERE id <= ? AND customer_id = ?", (newest[0], customer_id))]


def _delete_answers(connection, customer_id: str, newest: tuple[int, str] | None, found: list[int]) -> int:
    """Delete the customer's logged answers, inside the erasure's transaction, given what
    :func:`_logged_answers_of` read before it: those rows by id, and the customer's rows
    logged since, all above the newest row then, as long as that row is still there (SQLite
    gives a new row the highest id plus one). If it was deleted meanwhile (another erasure),
    ids may have been given again: then the whole log is read, under the lock."""
    if newest is None or connection.execute("SELECT recommendation_id FROM answers WHERE id = ?", (newest[0],)).fetchone() != (newest[1],):
        return connection.execute("DELETE FROM answers WHERE customer_id = ?", (customer_id,)).rowcount
    deleted = connection.execute("DELETE FROM answers WHERE id > ? AND customer_id = ?", (newest[0], customer_id)).rowcount
    for start in range(0, len(found), _ANSWERS_PER_INSERT):
        ids = found[start : start + _ANSWERS_PER_INSERT]
        deleted += connection.execute(
            f"DELETE FROM answers WHERE customer_id = ? AND id IN ({', '.join('?' * len(ids))})", (customer_id, *ids)
        ).rowcount
    return deleted


@register_backend("sqlite")
class SQLiteEventStore(EventStore):
    """Durable append-only events, the answer log and the erasure list in one SQLite file,
    safe across threads and processes of one host.

    Which customers have events at all is known without a query
    (:mod:`recommender.events.index`), so most reads never reach the database.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.location = str(self.path)
        self._connections = Connections(self.path)
        # From the resolved path: SQLite follows a symlink for its -wal and -shm files, and a
        # store opened through a link must share the signal of the one opened directly.
        resolved = self.path.resolve()
        self.signal = ChangeSignal(resolved.with_name(resolved.name + "-signal"))
        self._index = CustomersWithEvents(self.signal)

    def _connection(self):
        return self._connections.get()

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        self._connections.close()

    def _announced(self, write) -> None:
        """Run ``write(connection)`` in one transaction, then tell every process."""
        if not self.signal.writable():
            # Stored rows that other processes cannot be told about would be acknowledged
            # and then missing from their answers: refuse (the API answers 503, retry).
            raise EventStoreUnavailable(f"{self.signal.path} cannot be used, so other processes would not see new events")
        with transaction(self._connection()) as connection:
            write(connection)
        if not self.signal.announce():  # before returning, so before the API acknowledges
            log.error("stored, but %s could not be written: other processes see it after the next write", self.signal.path)

    # -- events ---------------------------------------------------------------------
    def add(self, events: Iterable[Event]) -> int:
        """As :meth:`EventStore.add`."""
        events = list(events)
        rows = insert_rows(events, int(time.time()))
        stored = 0

        def write(connection) -> None:
            nonlocal stored
            before = connection.total_changes
            connection.executemany(INSERT_EVENTS.format("?"), rows)
            stored = connection.total_changes - before
            if stored < len(rows):  # some were retries: each must be the event stored under its key
                refuse_reused_keys(events, lambda customer, key: connection.execute(STORED_UNDER_KEY.format("?"), (customer, key)).fetchone())

        if rows:
            self._announced(write)
        return stored

    def for_customer(self, customer_id: str, *, after_id: int = 0) -> list[Event]:
        """The customer's events in the order they were stored (not by their own timestamps); ``after_id`` skips those already trained on."""
        if not self._index.may_have_events(customer_id, after_id, self._connections.get_with_identity):
            return []
        cursor = self._connection().execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE customer_id = ? AND id > ? ORDER BY id", (customer_id, after_id)
        )
        return [Event(*row) for row in cursor]

    def customer_feedback(
        self, customer_id: str, event_weights: Mapping[str, float] = DEFAULT_EVENT_WEIGHTS, *, after_id: int = 0
    ) -> CustomerFeedback:
        """Everything serving needs about one customer, in at most one query: their positive
        events newer than ``after_id``, every item they said "not interested" in (whatever
        its age: it stays out after retraining), and their latest erasure."""
        may_have_events, may_have_rejected, erasure_id = self._index.look_up(customer_id, after_id, self._connections.get_with_identity)
        if not (may_have_events or may_have_rejected):
            # The serving hot path: most customers have nothing in the store.
            return NO_FEEDBACK if not erasure_id else CustomerFeedback([], [], erasure_id)
        cursor = self._connection().execute(
            "SELECT id, item_id, event_type, quantity FROM events WHERE customer_id = ? AND (id > ? OR event_type = ?) ORDER BY id",
            (customer_id, after_id, NOT_INTERESTED),
        )
        return feedback_from_rows(cursor, after_id, event_weights, erasure_id)

    def count(self) -> int:
        """How many events the store holds."""
        return int(self._connection().execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def feedback_events(self, *, since: int = 0, until: int | None = None, types: Sequence[str] = (*FEEDBACK_TYPES, "purchase")) -> list[Event]:
        """As :meth:`EventStore.feedback_events`."""
        marks = ", ".join("?" for _ in types)
        cursor = self._connection().execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE event_type IN ({marks}) AND timestamp <= ? "
            "AND (timestamp >= ? OR recommendation_id IS NOT NULL) ORDER BY timestamp, id",
            (*types, until if until is not None else 2**62, since),
        )
        return [Event(*row) for row in cursor]

    def event_rows(self, *, after_id: int = 0) -> list[tuple]:
        """Every event after ``after_id`` as (id, customer_id, item_id, event_type, quantity, timestamp)."""
        return self._connection().execute(
            "SELECT id, customer_id, item_id, event_type, quantity, timestamp FROM events WHERE id > ? ORDER BY id", (after_id,)
        ).fetchall()

    # -- the answer log -------------------------------------------------------------
    def add_answers(self, answers: Sequence[AnswerRecord]) -> int:
        """Log answers in one transaction; returns how many were logged. Not announced:
        serving never reads the log per request. Answers
        served before their customer was erased are not logged (a worker may still have
        held them in memory when another worker erased the customer)."""
        if not answers:
            return 0
        join = ITEM_SEPARATOR.join
        connection = self._connection()
        # Without an fsync per batch: the log already accepts losing its last moments on a crash,
        # and an fsync on every flush cost the serving workers more CPU than the rows themselves
        # (on this VM). A later event's commit (FULL) makes these rows durable too.
        connection.execute("PRAGMA synchronous = NORMAL")
        try:
            return self._insert_answers(connection, answers, join)
        finally:
            connection.execute("PRAGMA synchronous = FULL")

    @staticmethod
    def _insert_answers(connection, answers: Sequence[AnswerRecord], join) -> int:
        with transaction(connection):
            first = min(a.served_at for a in answers)
            erased = dict(connection.execute(
                "SELECT customer_key, MAX(erased_at) FROM erasures WHERE erased_at >= ? GROUP BY customer_key", (first,)
            ).fetchall())
            if erased:
                answers = [a for a in answers if a.customer_id is None or erased.get(customer_key(a.customer_id), -1) < a.served_at]
            rows = [(rid, customer, endpoint, experiment, variant, version, join(items), int(served))
                    for rid, customer, endpoint, experiment, variant, version, items, served in answers]
            for start in range(0, len(rows), _ANSWERS_PER_INSERT):
                chunk = rows[start : start + _ANSWERS_PER_INSERT]
                connection.execute(_insert_answers_statement(len(chunk)), [value for row in chunk for value in row])
        return len(rows)

    def answers(self, *, experiment: str | None = None, since: int = 0, until: int | None = None) -> list[AnswerRecord]:
        """Logged answers served from ``since`` to ``until``, oldest first; of one experiment
        when ``experiment`` is given."""
        query = f"SELECT {_ANSWER_COLUMNS} FROM answers WHERE served_at >= ? AND served_at <= ?"
        parameters: tuple = (since, until if until is not None else 2**62)
        if experiment is not None:
            query, parameters = query + " AND experiment = ?", (*parameters, experiment)
        cursor = self._connection().execute(query + " ORDER BY served_at, id", parameters)
        return [answer_from_row(row) for row in cursor]

    def answer(self, recommendation_id: str) -> AnswerRecord | None:
        """One logged answer by its id, or None (a diagnostic: it reads the log through)."""
        row = self._connection().execute(f"SELECT {_ANSWER_COLUMNS} FROM answers WHERE recommendation_id = ?", (recommendation_id,)).fetchone()
        return None if row is None else answer_from_row(row)

    def prune_answers(self, before: int) -> int:
        """Delete answers served before ``before`` (epoch seconds); returns how many. Rows are
        logged in time order, so the oldest ids go first: a scan from the start that stops at
        the first newer answer, not a scan of the whole log."""
        connection = self._connection()
        kept = connection.execute("SELECT id FROM answers WHERE served_at >= ? ORDER BY id LIMIT 1", (before,)).fetchone()
        first_kept = None if kept is None else kept[0]
        with transaction(connection):
            if first_kept is None:
                return connection.execute("DELETE FROM answers WHERE served_at < ?", (before,)).rowcount
            return connection.execute("DELETE FROM answers WHERE id < ? AND served_at < ?", (first_kept, before)).rowcount

    # -- forgetting -----------------------------------------------------------------
    def forget(self, customer_id: str) -> Erasure:
        """Delete the customer's events and logged answers and add them to the erasure list,
        in one transaction, announced to every process.

        The answer log has no index by customer (every logged answer would pay for one), so
        its rows are read for the customer's first, outside any write transaction (a reader
        of a WAL file blocks no writer; 3 million rows took 0.25-0.3 s in memory,
        ``research/erasure_cost.py``). The transaction then deletes them by id, and whatever
        of theirs was logged since. From its commit on, no answer served before the erasure
        can be logged (:meth:`add_answers` drops them).

        Deleted rows are overwritten in the database file (``secure_delete``) and the
        write-ahead log is checkpointed and truncated afterwards, so their text does not
        linger in either file (when a reader holds the log at that moment, the next
        checkpoint truncates it)."""
        key, counts = customer_key(customer_id), {}
        newest, found = _logged_answers_of(self._connection(), customer_id)

        def write(connection) -> None:
            # Taken now, not before the read: an answer served while the log was read is one
            # served before the erasure, and must be dropped if it is logged after it.
            counts["erased_at"] = int(time.time())
            connection.execute("PRAGMA secure_delete = ON")
            counts["events"] = connection.execute("DELETE FROM events WHERE customer_id = ?", (customer_id,)).rowcount
            counts["answers"] = _delete_answers(connection, customer_id, newest, found)
            counts["id"] = connection.execute("INSERT INTO erasures (customer_key, erased_at) VALUES (?, ?)", (key, counts["erased_at"])).lastrowid

        self._announced(write)
        connection = self._connection()
        connection.execute("PRAGMA busy_timeout = 100")  # a checkpoint waiting for readers holds writers up
        try:
            busy = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        except sqlite3.Error as error:
            busy = error
        finally:
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if busy:  # a reader holds the log: the next automatic checkpoint writes it over
            log.warning("checkpoint after an erasure postponed: %s", "a reader holds the write-ahead log" if busy == 1 else busy)
        return Erasure(key, counts["id"], counts["erased_at"], counts["events"], counts["answers"])

    def erasures(self, *, after_id: int = 0) -> list[tuple[int, str, int]]:
        """The erasure list after ``after_id``: (erasure id, customer key, erased at), oldest first."""
        return self._connection().execute(
            "SELECT id, customer_key, erased_at FROM erasures WHERE id > ? ORDER BY id", (after_id,)
        ).fetchall()

