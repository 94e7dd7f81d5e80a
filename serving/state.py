"""The app's serving state, and what endpoints look up in it per request: the served
model and a customer's events newer than it.

The factory (:mod:`serving.app`) builds the state; blueprints read it through
:func:`serving_state`, so no blueprint imports the factory.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app

from recommender.events import EventStore
from recommender.model import Model

from .errors import ApiError
from .metrics import ServingMetrics
from .model_holder import ModelHolder

log = logging.getLogger(__name__)
EXTENSION = "recommender"


@dataclass
class ServingState:
    """What every request needs besides its own input; one per app (and per worker)."""

    models: ModelHolder
    events: EventStore
    metrics: ServingMetrics


def serving_state() -> ServingState:
    """The current app's :class:`ServingState`."""
    return current_app.extensions[EXTENSION]


def served_model(state: ServingState | None = None) -> Model:
    """The model for this whole request (taken once, so a reload cannot change it midway).
    ``state``: the app's serving state when the caller already holds it."""
    model = (state or serving_state()).models.current()
    if model is None:
        raise ApiError(503, "model_unavailable", "no model is loaded yet; see /ready")
    return model


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
        return state.events.weighted_items(customer_id, config["EVENT_WEIGHTS"], after_id=model.events_trained_through)
    except sqlite3.Error:
        log.exception("event store %s unreadable; answering from the model alone", state.events.path)
        return []
