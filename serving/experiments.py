"""Experiments between models and their online figures: ``GET /v1/experiments`` and
``GET /v1/experiments/<name>``.

The figures (per variant: answers, impressions, clicks, CTR, attributed purchases,
conversion, revenue; the difference against the control with its interval; the
verdict) come from :func:`recommender.experiments.read_figures`, the same function the
report command and any page call. A worker recomputes them at most every
``EXPERIMENT_FIGURES_SECONDS`` (the answer log and events are read whole), after
writing its own buffered answers; answers still buffered in other workers (at most
``ANSWER_LOG_FLUSH_SECONDS`` old) count from the next computation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, current_app

from recommender.experiments import read_figures

from .auth import require_read_token
from .errors import ApiError
from .state import ServingState, serving_state

experiments = Blueprint("experiments", __name__)


def current_figures(state: ServingState, config: Mapping[str, Any]) -> dict[str, dict]:
    """Every configured experiment's figures, by name (cached, see the module's docstring)."""
    running = state.experiments.experiments

    def compute() -> dict:
        state.answer_log.flush()
        window = int(math.ceil(config["ATTRIBUTION_HOURS"] * 3600))
        return read_figures(state.events, running, window=window, prices=state.figures.prices(state.models.model))

    if not running.experiments:
        return {}
    return state.figures.get(running, compute)


def _described(state: ServingState, figures: dict[str, dict], name: str) -> dict:
    return {**figures[name], "status": state.experiments.status(name)}


@experiments.get("/experiments")
@require_read_token
def list_experiments():
    """Every experiment in the file, with its figures; ``error`` says why a changed file is not running."""
    state = serving_state()
    state.experiments.refresh()
    figures = current_figures(state, current_app.config)
    holder = state.experiments
    return {
        "source": str(holder.path) if holder.path else None,
        "error": holder.error,
        "experiments": [_described(state, figures, e.name) for e in holder.experiments.experiments],
    }


@experiments.get("/experiments/<name>")
@require_read_token
def experiment(name: str):
    """One experiment's figures and verdict; 404 for a name the file does not have."""
    state = serving_state()
    state.experiments.refresh()
    if state.experiments.experiments.named(name) is None:
        known = ", ".join(e.name for e in state.experiments.experiments.experiments) or "none are configured (RECOMMENDER_EXPERIMENTS)"
        raise ApiError(404, "unknown_experiment", f"no experiment named {name[:80]!r}; known: {known}")
    return _described(state, current_figures(state, current_app.config), name)
