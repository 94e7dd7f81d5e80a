"""Receiving events: purchases and other interactions, stored before they are acknowledged. Guarded by API_TOKEN."""

from __future__ import annotations

from flask import Blueprint

from recommender.events import IdempotencyKeyReused

from .auth import require_write_token
from .errors import ApiError, bad_request
from .state import serving_state
from .validation import bounded_list, json_body, parse_event

events = Blueprint("events", __name__)


@events.post("/events")
@require_write_token
def post_events():
    """Store one event, or ``{"events": [...]}``, durably before answering 202.

    A batch is all or nothing: one bad event rejects the batch with its index, and
    nothing is stored. Items the model does not know are stored too; the next
    training learns them. An event whose customer already has its ``idempotency_key``
    (a retry after a lost answer) is not stored again: the answer counts it as
    ``already_stored``, and the 202 says that everything sent is now stored. A key sent
    with another event than the one stored under it is a 409, and nothing is stored.
    """
    body = json_body()
    batch = isinstance(body, dict) and "events" in body
    if batch:
        if len(body) > 1:
            other = next(str(name)[:64] for name in body if name != "events")
            raise bad_request(f"{other} is not a field of a batch; a batch is {{\"events\": [...]}}", code="unknown_field")
        raw_events = bounded_list(body["events"], "events", "event objects")
        parsed = [parse_event(raw, f"events[{k}]") for k, raw in enumerate(raw_events)]
    else:
        parsed = [parse_event(body, "event")]
    state = serving_state()
    try:
        stored = state.events.add(parsed)
    except IdempotencyKeyReused as error:
        where = f"events[{error.position}]" if batch else "event"
        raise ApiError(409, "idempotency_key_reused", f"{where}: {error}; nothing of this request was stored") from None
    state.metrics.events_stored.inc(stored)
    state.metrics.events_already_stored.inc(len(parsed) - stored)
    return {"stored": stored, "already_stored": len(parsed) - stored}, 202

