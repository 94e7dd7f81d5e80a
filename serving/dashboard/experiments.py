"""The experiments page: per variant the rates with their intervals, and the same over time,
as charts and tables; the overview shows each experiment's verdict.

The page reads experiments through :func:`experiment_views` only, a small interface
(:class:`ExperimentView` and its parts) that the charts are drawn from, built from the
figures ``GET /v1/experiments/<name>`` answers (:func:`serving.lookups.current_figures`),
so the page and the API never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, render_template
from markupsafe import Markup

from ..lookups import current_figures
from ..state import ServingState, serving_state
from . import charts
from .blueprint import dashboard
from .formatting import percent, when


@dataclass
class Rate:
    """A proportion with its interval (the method is the experiment's ``method``)."""

    value: float
    low: float
    high: float


@dataclass
class VariantFigures:
    name: str
    model: str  # the model version, "current" or "popular" it serves
    answers: int
    impressions: int
    clicks: int
    purchases: int
    click_through: Rate | None  # clicks / impressions
    conversion: Rate | None  # attributed purchases / impressions
    revenue: float | None = None  # attributed purchases' value at catalog prices (None: no prices)
    difference: Rate | None = None  # the experiment's metric minus the control's, with its interval
    revenue_per_customer: Rate | None = None  # revenue over the customers answered, with its interval
    revenue_difference: Rate | None = None  # that minus the control's, with its interval


@dataclass
class RatesAt:
    """One variant's rates as they read at one moment of the experiment."""

    at: float  # epoch seconds
    variant: str
    click_through: Rate | None
    conversion: Rate | None


@dataclass
class ExperimentView:
    name: str
    method: str  # how intervals and the verdict were computed, in words
    verdict: str
    variants: list[VariantFigures]
    over_time: list[RatesAt] = field(default_factory=list)
    control: str = ""
    metric: str = "click-through"  # what the verdict and the differences are about


def experiment_views(state: ServingState, config: Mapping[str, Any]) -> list[ExperimentView]:
    """The configured experiments with their figures, in the experiments file's order."""
    figures = current_figures(state, config)
    return [view_from_figures(figures[e.name]) for e in state.experiments.experiments.experiments if e.name in figures]


def view_from_figures(figures: dict) -> ExperimentView:
    """An experiment's figures as ``GET /v1/experiments/<name>`` answers them (per variant counts, ``ctr`` and ``conversion`` with ``*_interval`` [low, high],
    a ``verdict`` with its ``text``, the ``method``; optionally a ``series`` of the rates
    as they read at moments of the experiment) as the page's view."""

    def rate(values: dict, name: str) -> Rate | None:
        interval = values.get(f"{name}_interval")
        return None if values.get(name) is None or not interval else Rate(values[name], interval[0], interval[1])

    def difference(values: dict, name: str = "difference") -> Rate | None:
        found = values.get(name)
        return None if not found else Rate(found["estimate"], found["low"], found["high"])

    verdict = figures.get("verdict")
    variants = [
        VariantFigures(
            v["name"], str(v.get("model", "")), v.get("answers", 0), v.get("impressions", 0), v.get("clicks", 0),
            v.get("purchases", 0), rate(v, "ctr"), rate(v, "conversion"), v.get("revenue"), difference(v),
            rate(v, "revenue_per_customer"), difference(v, "revenue_difference"),
        )
        for v in figures.get("variants", [])
    ]
    over_time = [
        RatesAt(point["at"], name, rate(values, "ctr"), rate(values, "conversion"))
        for point in figures.get("series", [])
        for name, values in point.get("variants", {}).items()
    ]
    return ExperimentView(
        figures["name"], figures.get("method", ""), verdict.get("text", "") if isinstance(verdict, dict) else str(verdict or ""),
        variants, over_time, str(figures.get("control", "")), "conversion" if figures.get("metric") == "conversion" else "click-through",
    )


def experiment_charts(view: ExperimentView) -> dict[str, Markup | None]:
    """Rates per variant with intervals, and the click-through rate over time, for one experiment."""
    rates = []
    for label, pick in (("Click-through rate", lambda v: v.click_through), ("Conversion rate", lambda v: v.conversion)):
        bars = [charts.Bar(v.name, r.value, r.low, r.high) for v in view.variants if (r := pick(v)) is not None]
        if bars:
            rates.append((label, bars))
    series: dict[str, list[charts.Point]] = {}
    for point in view.over_time:
        if point.click_through is not None:
            r = point.click_through
            series.setdefault(point.variant, []).append(charts.Point(point.at, when(point.at)[:16], r.value, r.low, r.high))
    return {
        "rates": charts.grouped_bars(rates, title=f"{view.name}: rates per variant, 95% intervals", value_text=percent) if rates else None,
        "over_time": charts.lines_over_time(series, title=f"{view.name}: click-through rate over time", value_text=percent) if series else None,
    }


@dashboard.get("/experiments")
def experiments():
    views = experiment_views(serving_state(), current_app.config)
    return render_template(
        "dashboard/experiments.html", section="experiments", experiments=[(view, experiment_charts(view)) for view in views]
    )
