"""The event store's one interface, and the factory that picks a backend from a location.

Two backends hold the same data (events, the answer log, the erasure list):

- SQLite (:mod:`.store`), the embedded default: one file shared by the worker processes
  of one host. Located by a plain path or ``sqlite:///path``.
- PostgreSQL (:mod:`.postgres`): one database shared by several API hosts. Located by
  ``postgresql://user@host:port/database`` (any libpq URL; ``postgres://`` too).

``EventStore(location)`` and :func:`open_event_store` both return the right backend,
chosen by the location's scheme, as SQLAlchemy and Celery choose theirs by URL.
"""

from __future__ import annotations

import abc
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ..weights import DEFAULT_EVENT_WEIGHTS, FEEDBACK_TYPES, NOT_INTERESTED, PURCHASE, weigh_event
from .records import ITEM_SEPARATOR, AnswerRecord, CustomerFeedback, Erasure, Event
from .sqlite import not_a_database

# The events table's columns as both backends read and write them (``Event``'s fields, in order).
EVENT_COLUMNS = "customer_id, item_id, event_type, quantity, timestamp, recommendation_id, idempotency_key"
# Storing events (rows of insert_rows), ``{0}`` the driver's placeholder: a retried event (the
# same customer and idempotency key) is stored once, and the first one stays.
INSERT_EVENTS = (f"INSERT INTO events ({EVENT_COLUMNS}, received_at) VALUES ({', '.join(['{0}'] * 8)}) "
                 "ON CONFLICT (customer_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING")
# What a retry must repeat (refuse_reused_keys: RETRY_FIELDS), by customer and key.
STORED_UNDER_KEY = "SELECT item_id, event_type, quantity, recommendation_id FROM events WHERE customer_id = {0} AND idempotency_key = {0}"
SQLITE_SCHEME = "sqlite://"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_BACKENDS: dict[str, type] = {}  # "sqlite" / "postgresql" -> class, filled as each backend module is imported


class EventStoreUnavailable(sqlite3.OperationalError):
    """The store cannot take or give events now (a locked or full disk, a database that is
    down or unreachable): an outage to retry, which the API answers with 503
    ``event_store_unavailable``. A subclass of SQLite's OperationalError so that every
    handler written for SQLite's own outages covers every backend's."""


class IdempotencyKeyReused(ValueError):
    """An event came with an idempotency key its customer already has for a different event
    (another item, type, quantity or answer): a client's bug, not a retry. Nothing of the
    batch is stored; the API answers 409 ``idempotency_key_reused``. ``position``: the
    event's place in the list given to :meth:`EventStore.add` (0-based)."""

    def __init__(self, message: str, position: int):
        super().__init__(message)
        self.position = position


# What a retry must repeat, as the events table names it; times are not compared (a retry
# without a time is dated by the server again).
RETRY_FIELDS = ("item_id", "event_type", "quantity", "recommendation_id")


def refuse_reused_keys(events: Iterable[Event], stored_under: Callable[[str, str], tuple | None]) -> None:
    """Raise :class:`IdempotencyKeyReused` for the first event of ``events`` whose key its
    customer holds for another event, naming the first field that differs;
    ``stored_under(customer_id, key)`` is the stored event's :data:`RETRY_FIELDS`."""
    for position, event in enumerate(events):
        if event.idempotency_key is None:
            continue
        stored = stored_under(event.customer_id, event.idempotency_key)
        sent = (event.item_id, event.event_type, float(event.quantity), event.recommendation_id)
        differing = [(name, old, new) for name, old, new in zip(RETRY_FIELDS, stored or sent, sent) if old != new]
        if differing:
            name, old, new = differing[0]
            raise IdempotencyKeyReused(
                f"customer {event.customer_id!r} already has idempotency_key {event.idempotency_key!r} for another event: "
                f"its {name} is {old!r}, this one's {new!r}. A retry must send the same event; a new event needs a new key", position)


def insert_rows(events: Iterable[Event], received_at: int) -> list[tuple]:
    """``events`` as :data:`INSERT_EVENTS` takes them: :data:`EVENT_COLUMNS`' order, then ``received_at``."""
    return [(e.customer_id, e.item_id, e.event_type, float(e.quantity), int(e.timestamp), e.recommendation_id, e.idempotency_key, received_at)
            for e in events]


class _ChoosesBackend(abc.ABCMeta):
    """``EventStore(location)`` opens the backend the location names (like ``Path()`` gives
    a ``PosixPath``); a backend's own class is built as usual."""

    def __call__(cls, *args, **kwargs):
        if cls is EventStore:
            return open_event_store(*args, **kwargs)
        return super().__call__(*args, **kwargs)


class EventStore(metaclass=_ChoosesBackend):
    """Durable append-only events, the answer log and the erasure list, safe across
    threads and processes (and, for PostgreSQL, hosts).

    Every method takes and returns plain values (:mod:`.records`); every query is
    parameterised. No write returns before it is committed: the API acknowledges an
    event only after :meth:`add` returned. Outages raise :class:`EventStoreUnavailable`.
    """

    #: where the store is, safe to print (a password in a URL is left out)
    location: str

    # -- events ---------------------------------------------------------------------
    @abc.abstractmethod
    def add(self, events: Iterable[Event]) -> int:
        """Store ``events`` in one transaction, durably, and return how many were stored: an
        event with an ``idempotency_key`` its customer already has (a client's retry, or the
        same key twice in ``events``) is not stored again, and the first one stays as it was.
        Raises :class:`IdempotencyKeyReused`, storing nothing, when such a key was stored with
        another event (:func:`refuse_reused_keys`)."""

    @abc.abstractmethod
    def for_customer(self, customer_id: str, *, after_id: int = 0) -> list[Event]:
        """The customer's events in the order they were stored (not by their own timestamps); ``after_id`` skips those already trained on."""

    @abc.abstractmethod
    def customer_feedback(
        self, customer_id: str, event_weights: Mapping[str, float] = DEFAULT_EVENT_WEIGHTS, *, after_id: int = 0
    ) -> CustomerFeedback:
        """Everything serving needs about one customer: their positive events newer than
        ``after_id``, every item they said "not interested" in (whatever its age: it stays
        out after retraining), and their latest erasure. Sees every write committed before
        the call began, by any process (or host) sharing the store."""

    def weighted_items(
        self, customer_id: str, event_weights: Mapping[str, float] = DEFAULT_EVENT_WEIGHTS, *, after_id: int = 0
    ) -> list[tuple[str, float]]:
        """(item_id, weight) pairs for :meth:`recommender.model.Model.recommend`'s ``new_events``."""
        return self.customer_feedback(customer_id, event_weights, after_id=after_id).new_events

    @abc.abstractmethod
    def count(self) -> int:
        """How many events the store holds."""

    @abc.abstractmethod
    def feedback_events(self, *, since: int = 0, until: int | None = None, types: Sequence[str] = (*FEEDBACK_TYPES, "purchase")) -> list[Event]:
        """Events of ``types`` whose timestamp is from ``since`` to ``until`` (inclusive), and
        those with a ``recommendation_id`` dated before ``since`` (a client's clock behind the
        server's: attribution counts them as outside the window rather than never seeing them),
        oldest first: what attribution reads."""

    @abc.abstractmethod
    def event_rows(self, *, after_id: int = 0) -> list[tuple]:
        """Every event after ``after_id`` as (id, customer_id, item_id, event_type, quantity,
        timestamp), by id: what training reads. Ids grow in commit order, so the newest id
        read is a safe cut-off for serving (no event below it can appear later)."""

    # -- the answer log -------------------------------------------------------------
    @abc.abstractmethod
    def add_answers(self, answers: Sequence[AnswerRecord]) -> int:
        """Log answers in one transaction; returns how many were logged. Answers served
        before their customer was erased are not logged."""

    @abc.abstractmethod
    def answers(self, *, experiment: str | None = None, since: int = 0, until: int | None = None) -> list[AnswerRecord]:
        """Logged answers served from ``since`` to ``until``, oldest first; of one experiment
        when ``experiment`` is given."""

    @abc.abstractmethod
    def answer(self, recommendation_id: str) -> AnswerRecord | None:
        """One logged answer by its id, or None."""

    @abc.abstractmethod
    def prune_answers(self, before: int) -> int:
        """Delete answers served before ``before`` (epoch seconds); returns how many."""

    # -- forgetting -----------------------------------------------------------------
    @abc.abstractmethod
    def forget(self, customer_id: str) -> Erasure:
        """Delete the customer's events and logged answers and add them to the erasure
        list, in one transaction."""

    @abc.abstractmethod
    def erasures(self, *, after_id: int = 0) -> list[tuple[int, str, int]]:
        """The erasure list after ``after_id``: (erasure id, customer key, erased at), oldest first."""

    def close(self) -> None:
        """Give back what this store holds open (connections)."""


def feedback_from_rows(rows: Iterable[tuple], after_id: int, event_weights: Mapping[str, float], erasure_id: int) -> CustomerFeedback:
    """A :class:`CustomerFeedback` from (id, item_id, event_type, quantity) rows, oldest first."""
    new_events, rejected, bought, looked_at = [], [], set(), {}
    for event_id, item_id, event_type, quantity in rows:
        if event_type == NOT_INTERESTED:
            rejected.append(item_id)
        elif event_id > after_id:
            weight = weigh_event(event_type, quantity, event_weights)
            if weight > 0:
                new_events.append((item_id, weight))
                if event_type == PURCHASE:
                    bought.add(item_id)
                else:
                    looked_at[item_id] = None  # a dict keeps the events' order
    viewed = tuple(item_id for item_id in looked_at if item_id not in bought)
    return CustomerFeedback(new_events, rejected, erasure_id, viewed)


def answer_from_row(row: tuple) -> AnswerRecord:
    """An :class:`AnswerRecord` from a row of the answers table (items joined by ITEM_SEPARATOR)."""
    recommendation_id, customer_id, endpoint, experiment, variant, model_version, items, served_at = row
    return AnswerRecord(recommendation_id, customer_id, endpoint, experiment, variant, model_version,
                        tuple(items.split(ITEM_SEPARATOR)) if items else (), served_at)


def register_backend(kind: str):
    """Class decorator: the backend for locations of ``kind`` ("sqlite" or "postgresql")."""
    def register(cls):
        _BACKENDS[kind] = cls
        return cls
    return register


def backend_of(location) -> tuple[str, str | Path]:
    """("sqlite", path) or ("postgresql", url) for a location: a plain path (as before URLs
    were taken), ``sqlite:///path``, or a PostgreSQL URL."""
    text = str(location)
    if text.startswith(POSTGRES_SCHEMES):
        return "postgresql", text
    if text.startswith(SQLITE_SCHEME):
        # sqlite:///relative/or/absolute as SQLAlchemy: three slashes then the path; four for an absolute one.
        path = text[len(SQLITE_SCHEME):]
        if not path.startswith("/") or len(path) < 2:
            raise ValueError(f"{text!r}: a SQLite event store URL is sqlite:///path (three slashes, then the file's path)")
        return "sqlite", Path(path[1:])
    if "://" in text:
        raise ValueError(f"{text!r}: not an event store; give a path, sqlite:///path or postgresql://user@host:port/database")
    return "sqlite", Path(text)


def open_event_store(location) -> EventStore:
    """The event store at ``location`` (a path, ``sqlite:///path`` or ``postgresql://...``),
    created on first use. Raises ValueError for a location of no known kind."""
    kind, target = backend_of(location)
    return _BACKENDS[kind](target)


def store_missing(location) -> bool:
    """True when ``location`` is a SQLite file that does not exist yet (tools that only
    read refuse it rather than create an empty store); a database URL is never missing."""
    kind, target = backend_of(location)
    return kind == "sqlite" and not Path(target).exists()


def not_an_event_store(location) -> str | None:
    """Why an existing SQLite location cannot hold an event store (a folder, or a file that is
    no SQLite database, such as a purchase CSV given for it), as words that follow its name;
    None otherwise. Read only: nothing is created or changed at the location."""
    kind, target = backend_of(location)
    path = Path(target)
    if kind != "sqlite" or not path.exists():
        return None
    if path.is_dir():
        return "is a folder, not an SQLite event store"
    reason = not_a_database(path)
    return None if reason is None else f"is not an SQLite event store ({reason})"


def redacted(location) -> str:
    """``location`` safe to log or write into a manifest: a URL's password is replaced."""
    text = str(location)
    if "://" not in text:
        return text
    parts = urlsplit(text)
    if parts.password is None:
        return text
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
