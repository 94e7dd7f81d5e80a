"""Experiments between models and their online figures: ``GET /v1/experiments`` and
``GET /v1/experiments/<name>``.

The figures (per variant: answers, impressions, clicks, CTR, attributed purchases,
conversion, revenue; the difference against the control with its interval; the
verdict; the rates as they read at moments of the experiment, ``series``) come from
:func:`serving.lookups.current_figures`, which the dashboard and ``/metrics`` read too.
"""

from __future__ import annotations

from flask import Blueprint, current_app

from .auth import require_read_token
from .errors import ApiError
from .lookups import current_figures
from .state import ServingState, serving_state

experiments = Blueprint("experiments", __name__)


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
