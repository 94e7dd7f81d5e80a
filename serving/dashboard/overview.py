"""The overview: the served model, its offline metrics, live traffic and experiments' verdicts."""

from __future__ import annotations

from flask import current_app, render_template

from ..lookups import model_summary
from ..state import served_model, serving_state
from . import charts
from .blueprint import dashboard, dashboard_state
from .experiments import experiment_views
from .formatting import headline_metrics, milliseconds
from .models import CHOICE, report_available
from .traffic import read_metrics


@dashboard.get("/")
def overview():
    """What is served, how well it did offline, and what the server is doing now."""
    state = serving_state()
    model = served_model(state)
    traffic = dashboard_state().traffic.observe(read_metrics(state.metrics.readable_registry()))
    timed = [route for route in traffic.endpoints if route.p99 is not None]
    latency_chart = charts.grouped_bars(
        [
            (f"{route.method} {route.endpoint}", [charts.Bar("p50", route.p50 or 0.0), charts.Bar("p99", route.p99 or 0.0)])
            for route in timed
        ],
        title="Latency per endpoint, p50 and p99",
        value_text=milliseconds,
    ) if timed else None
    return render_template(
        "dashboard/overview.html",
        section="overview",
        model=model_summary(model.manifest),
        trained_through=model.events_trained_through,
        metrics=headline_metrics(model.manifest.get("metrics")),
        has_report=report_available(model.manifest),
        has_choice=report_available(model.manifest, CHOICE),
        traffic=traffic,
        latency_chart=latency_chart,
        events_in_store=state.events.count(),
        experiments=experiment_views(state, current_app.config),
    )
