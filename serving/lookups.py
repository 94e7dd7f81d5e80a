"""What endpoints look up per request: the served model and a customer's new events."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

from flask import current_app

from recommender.model import Model

from .app import ServingState, serving_state
from .errors import ApiError

log = logging.getLogger(__name__)


def served_model(state: ServingState | None = None) -> Model:
    """The model for this whole request (taken once, so a reload cannot change it midway).
    ``state``: the app's serving state when the caller already holds it."""
    model = (state or serving_state()).models.current()
    if model is None:
        raise ApiError(503, "model_unavailable", "no model is loaded yet; see /ready")
    return model


def events_trained_through(model: Model) -> int:
    """The newest event-store id the model was trained on (training records it), else 0."""
    data = model.manifest.get("data") or {}
    value = data.get("events_through_id", 0) if isinstance(data, dict) else 0
    return value if isinstance(value, int) else 0


def new_events(
    model: Model, customer_id: str, state: ServingState | None = None, config: Mapping[str, Any] | None = None
) -> list[tuple[str, float]]:
    """The customer's (item_id, weight) events newer than the model, for Model.recommend.

    If the event store cannot be read the request is still answered from the model
    alone (logged): a slightly stale list beats no list. ``state`` and ``config`` may be
    passed by a caller that already holds them (each proxy look-up costs about 1 µs).
    """
    state = state or serving_state()
    config = current_app.config if config is None else config
    try:
        return state.events.weighted_items(customer_id, config["EVENT_WEIGHTS"], after_id=events_trained_through(model))
    except sqlite3.Error:
        log.exception("event store %s unreadable; answering from the model alone", state.events.path)
        return []
