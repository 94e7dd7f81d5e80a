"""What the event store holds, as plain values: events, logged answers, erasures.

These are the store's whole vocabulary: every method of
:class:`recommender.events.EventStore` takes and returns them (or plain numbers and
strings), so any backend can store them and the pure modules that attribute events
to answers (:mod:`recommender.experiments`) never see SQL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

#: Item ids of a logged answer are stored as one text, joined by the unit separator, which
#: no id may contain (ids have no control characters, see :mod:`recommender.ids`).
ITEM_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class Event:
    """One stored event; ``timestamp`` is epoch seconds (UTC). ``recommendation_id``
    names the answer it responds to, when the client sent one. ``idempotency_key``, when the
    client sent one, makes a retry harmless: the store keeps one event per customer and key."""

    customer_id: str
    item_id: str
    event_type: str = "purchase"
    quantity: float = 1.0
    timestamp: int = 0
    recommendation_id: str | None = None
    idempotency_key: str | None = None

    def to_dict(self) -> dict:
        return {
            "customer_id": self.customer_id,
            "item_id": self.item_id,
            "event_type": self.event_type,
            "quantity": self.quantity,
            "timestamp": self.timestamp,
            "recommendation_id": self.recommendation_id,
            "idempotency_key": self.idempotency_key,
        }


class AnswerRecord(NamedTuple):
    """One answer as the server logged it: which customer was shown which items, when,
    by which experiment's variant and model version. ``customer_id`` is None for similar
    items asked without a customer; ``experiment`` and ``variant`` are None outside
    experiments. (A named tuple: serving makes one per answer, and a frozen dataclass
    costs several times as much to build.)"""

    recommendation_id: str
    customer_id: str | None
    endpoint: str  # recommendations, similar or rank
    experiment: str | None
    variant: str | None
    model_version: str
    items: Sequence[str]  # item ids in the order shown (a tuple when read back)
    served_at: int  # epoch seconds


@dataclass(frozen=True)
class Erasure:
    """What forgetting a customer did: their key in the erasure list, the erasure's id
    there (ids grow), when, and how many stored events and logged answers were deleted."""

    customer_key: str
    erasure_id: int
    erased_at: int
    events_deleted: int
    answers_deleted: int


class CustomerFeedback(NamedTuple):
    """What serving needs from the store about one customer, read in one query:
    ``new_events``: (item_id, weight) of positive events newer than the model;
    ``rejected``: items they said they are not interested in, ever;
    ``erasure_id``: their latest erasure in the erasure list (0: never erased);
    ``viewed``: the items of ``new_events`` that none of them bought (views, clicks, carts)."""

    new_events: list[tuple[str, float]]
    rejected: list[str]
    erasure_id: int
    viewed: tuple[str, ...] = ()


NO_FEEDBACK = CustomerFeedback([], [], 0)  # the usual customer's: shared, never modified


def customer_key(customer_id: str) -> str:
    """How the erasure list names a customer: the SHA-256 of their id (hex), so the list
    does not spell out whom it forgets. (A short or guessable id can still be found by
    hashing candidates: protect the store as if it held the ids.)"""
    return hashlib.sha256(customer_id.encode("utf-8")).hexdigest()
