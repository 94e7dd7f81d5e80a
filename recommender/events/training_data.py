"""What training reads from the event store: its events, and its erasure list.

Training merges the store's events into the purchase log (:func:`merge_stored_events`)
and then leaves out every customer on the erasure list (:func:`forget_erased_customers`),
even where the purchase files still list them. The model's manifest records the
newest event and erasure it took into account, so serving counts no event twice and
knows which erasures the model already honours.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping

import numpy as np

from ..purchases import PurchaseLog
from ..vocabulary import IdVocabulary
from ..weights import DEFAULT_EVENT_WEIGHTS, PURCHASE, weigh_events
from .base import EventStore, backend_of, open_event_store
from .records import customer_key
from .sqlite import connect


def _read_rows(location, query: str, parameters: tuple, read: Callable[[EventStore], list[tuple]]) -> list[tuple]:
    """Rows of a read-only query; a SQLite store (or table) that does not exist yet has none
    (and is not created). A database is read through its backend, ``read(store)``."""
    kind, path = backend_of(location)
    if kind != "sqlite":
        store = open_event_store(location)
        try:
            return read(store)
        finally:
            store.close()
    if not path.exists():
        return []
    connection = connect(path, read_only=True)
    try:
        return connection.execute(query, parameters).fetchall()
    except sqlite3.OperationalError as error:
        if "no such table" not in str(error):
            raise
        return []
    finally:
        connection.close()


def read_events(path, *, after_id: int = 0) -> dict[str, np.ndarray]:
    """Every stored event as parallel arrays, for training to merge with purchase files.
    ``path``: the store's location (a path, ``sqlite:///path`` or ``postgresql://...``).

    Keys: ``id`` (int64), ``customer_id``, ``item_id``, ``event_type`` (unicode),
    ``quantity`` (float64), ``timestamp`` (int64 epoch seconds). A missing store reads
    as no events. Record ``id.max()`` in the model manifest as ``data.events_through_id``
    so serving does not count those events twice.
    """
    columns = ("id", "customer_id", "item_id", "event_type", "quantity", "timestamp")
    rows = _read_rows(path, f"SELECT {', '.join(columns)} FROM events WHERE id > ? ORDER BY id", (after_id,),
                      lambda store: store.event_rows(after_id=after_id))
    values = list(zip(*rows)) if rows else [()] * len(columns)
    return {
        "id": np.asarray(values[0], dtype=np.int64),
        "customer_id": np.asarray(values[1], dtype=str),
        "item_id": np.asarray(values[2], dtype=str),
        "event_type": np.asarray(values[3], dtype=str),
        "quantity": np.asarray(values[4], dtype=np.float64),
        "timestamp": np.asarray(values[5], dtype=np.int64),
    }


def weighed_events(path, event_weights: Mapping[str, float] = DEFAULT_EVENT_WEIGHTS) -> tuple[dict[str, np.ndarray], np.ndarray, int]:
    """The stored events training takes, as :func:`read_events` gives them: those whose type
    and quantity weigh above 0 (impressions, "not interested" and unknown types are left
    out); their weights (float64); and the last event id read (0: none)."""
    events = read_events(path)
    weights = weigh_events(events["event_type"], events["quantity"], event_weights)
    keep = weights > 0
    through = int(events["id"].max()) if len(events["id"]) else 0
    return {name: values[keep] for name, values in events.items()}, weights[keep], through


def merge_stored_events(log: PurchaseLog, path, event_weights: Mapping[str, float] = DEFAULT_EVENT_WEIGHTS) -> tuple[PurchaseLog, int]:
    """``log`` plus every event in the store at ``path`` that training takes
    (:func:`weighed_events`); returns it and the last event id read.

    New customers and items extend the vocabularies (existing indices keep), so items
    first seen through the API are learned by the next training run.
    """
    events, weights, through = weighed_events(path, event_weights)
    if not through:
        return log, 0
    customers = log.customers.extended(events["customer_id"].tolist())
    items = log.items.extended(events["item_id"].tolist())
    timestamp = None
    if log.timestamp is not None:
        timestamp = np.concatenate([log.timestamp, events["timestamp"]])
    merged = PurchaseLog(
        customers,
        items,
        np.concatenate([log.customer_index, customers.lookup(events["customer_id"].tolist()).astype(np.int32)]),
        np.concatenate([log.item_index, items.lookup(events["item_id"].tolist()).astype(np.int32)]),
        np.concatenate([log.weight, weights.astype(np.float32)]),
        timestamp,
        dict(log.skipped),
        list(log.notes),
        _bought_with(log, events["event_type"] == PURCHASE),
    )
    return merged, through


def _bought_with(log: PurchaseLog, events_bought: np.ndarray) -> np.ndarray | None:
    """:attr:`PurchaseLog.bought` of ``log`` followed by the stored events (None: all bought)."""
    if log.bought is None and events_bought.all():
        return None
    return np.concatenate([np.ones(len(log), dtype=bool) if log.bought is None else log.bought, events_bought])


def read_erasures(path) -> tuple[set[str], int]:
    """The erasure list of the store at ``path``: the customers' keys, and the newest erasure id (0: none)."""
    rows = _read_rows(path, "SELECT id, customer_key FROM erasures ORDER BY id", (),
                      lambda store: [(erasure_id, key) for erasure_id, key, _ in store.erasures()])
    return {key for _, key in rows}, max((erasure_id for erasure_id, _ in rows), default=0)


def erased_in(customers: IdVocabulary, keys: set[str]) -> np.ndarray:
    """A mask over ``customers``: true for every id on the erasure list (by key)."""
    if not keys:
        return np.zeros(len(customers), dtype=bool)
    return np.fromiter((customer_key(c) in keys for c in customers.ids.tolist()), dtype=bool, count=len(customers))


def forget_erased_customers(log: PurchaseLog, path) -> tuple[PurchaseLog, int, int]:
    """``log`` without the customers on the store's erasure list: their rows and their ids
    leave it (the next model's vocabulary does not know them). Returns the log, the newest
    erasure id applied, and how many customers were left out."""
    keys, through = read_erasures(path)
    erased = erased_in(log.customers, keys)
    if not erased.any():
        return log, through, 0
    kept_customers = np.flatnonzero(~erased)
    renumber = np.full(len(log.customers), -1, dtype=np.int64)
    renumber[kept_customers] = np.arange(len(kept_customers))
    rows = renumber[log.customer_index] >= 0
    forgotten = PurchaseLog(
        IdVocabulary(log.customers.ids[kept_customers]),
        log.items,
        renumber[log.customer_index[rows]].astype(np.int32),
        log.item_index[rows],
        log.weight[rows],
        None if log.timestamp is None else log.timestamp[rows],
        dict(log.skipped),
        list(log.notes),
        None if log.bought is None else log.bought[rows],
    )
    return forgotten, through, int(erased.sum())
