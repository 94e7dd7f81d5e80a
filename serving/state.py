"""The app's serving state, and what endpoints look up in it per request: the served
model, a customer's events newer than it, and how the answer is traced.

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

from recommender.events import AnswerIds, AnswerLog, CustomerFeedback, EventStore
from recommender.model import Model

from .erasure_list import KnownErasures
from .errors import ApiError
from .experiment_holder import ExperimentHolder, FiguresCache
from .metrics import ServingMetrics
from .model_holder import ModelHolder
from .prepared import PreparedAnswers

log = logging.getLogger(__name__)
EXTENSION = "recommender"


@dataclass
class ServingState:
    """What every request needs besides its own input; one per app (and per worker)."""

    models: ModelHolder
    events: EventStore
    metrics: ServingMetrics
    experiments: ExperimentHolder
    answer_log: AnswerLog
    answer_ids: AnswerIds
    figures: FiguresCache
    prepared: PreparedAnswers  # plain top-list answers, kept encoded
    erasures: KnownErasures  # the erasure list as last read, for answering while the store is down


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


def customer_feedback(model: Model, customer_id: str, state: ServingState, config: Mapping[str, Any]) -> CustomerFeedback:
    """The customer's events newer than the model, the items they said "not interested" in,
    and whether they were erased after the model was trained (see
    :meth:`recommender.events.EventStore.customer_feedback`).

    If the event store cannot be read the request is still answered from the model
    alone (logged): a slightly stale list beats no list. But an erased customer stays
    erased: the erasure list as this worker last read it says who (:mod:`serving.erasure_list`).
    """
    try:
        return state.events.customer_feedback(customer_id, config["EVENT_WEIGHTS"], after_id=model.events_trained_through)
    except sqlite3.Error:
        log.exception("event store %s unreadable; answering from the model alone", state.events.location)
        return state.erasures.during_outage(customer_id)
