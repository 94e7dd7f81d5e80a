"""Write and admin endpoints: receiving events, swapping the model. Guarded by API_TOKEN."""

from __future__ import annotations

from flask import Blueprint

from recommender.errors import ArtifactError

from .app import serving_state
from .auth import require_write_token
from .errors import ApiError
from .validation import bounded_list, json_body, parse_event

events_api = Blueprint("events_api", __name__)


@events_api.post("/events")
@require_write_token
def post_events():
    """Store one event, or ``{"events": [...]}``, durably before answering 202.

    A batch is all or nothing: one bad event rejects the batch with its index, and
    nothing is stored. Items the model does not know are stored too; the next
    training learns them.
    """
    body = json_body()
    if isinstance(body, dict) and "events" in body:
        raw_events = bounded_list(body["events"], "events", "event objects")
        events = [parse_event(raw, f"events[{k}]") for k, raw in enumerate(raw_events)]
    else:
        events = [parse_event(body, "event")]
    state = serving_state()
    stored = state.events.add(events)
    state.metrics.events_stored.inc(stored)
    return {"stored": stored}, 202


@events_api.post("/admin/reload")
@require_write_token
def reload_model():
    """Load the model the model path points to now and swap it in; the old one serves until then."""
    state = serving_state()
    previous = state.models.model
    try:
        model = state.models.reload()
    except ArtifactError as error:
        kept = previous.version if previous is not None else None
        raise ApiError(409, "reload_failed", f"the model could not be loaded, still serving {kept}: {error}") from None
    return {"model_version": model.version, "previous_version": previous.version if previous is not None else None}
