"""The experiments page: per variant the rates with their intervals, and the same over time,
as charts and tables; the overview shows each experiment's verdict.

The page reads experiments through :func:`experiment_views` only, a small interface
(:class:`ExperimentView` and its parts) that the charts are drawn from. Experiments
themselves (assignment, attribution, intervals, verdicts) are issue 18's work; until
they exist in the package this returns no experiment and the page says none is configured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import render_template
from markupsafe import Markup

from ..state import ServingState, serving_state
from . import charts
from .blueprint import dashboard
from .formatting import percent


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


@dataclass
class DailyRates:
    day: str  # YYYY-MM-DD
    variant: str
    click_through: Rate | None
    conversion: Rate | None


@dataclass
class ExperimentView:
    name: str
    method: str  # how intervals and the verdict were computed, in words
    verdict: str
    variants: list[VariantFigures]
    daily: list[DailyRates] = field(default_factory=list)


def experiment_views(state: ServingState) -> list[ExperimentView]:
    """The configured experiments with their figures; none until experiments exist (issue 18)."""
    return []


def experiment_charts(view: ExperimentView) -> dict[str, Markup | None]:
    """Rates per variant with intervals, and per day, for one experiment."""
    rates = []
    for label, pick in (("Click-through rate", lambda v: v.click_through), ("Conversion rate", lambda v: v.conversion)):
        bars = [charts.Bar(v.name, r.value, r.low, r.high) for v in view.variants if (r := pick(v)) is not None]
        if bars:
            rates.append((label, bars))
    daily: dict[str, list[charts.Point]] = {}
    for day in view.daily:
        if day.click_through is not None:
            r = day.click_through
            daily.setdefault(day.variant, []).append(charts.Point(day.day, r.value, r.low, r.high))
    return {
        "rates": charts.grouped_bars(rates, title=f"{view.name}: rates per variant, 95% intervals", value_text=percent) if rates else None,
        "over_time": charts.lines_over_time(daily, title=f"{view.name}: click-through rate per day", value_text=percent) if daily else None,
    }


@dashboard.get("/experiments")
def experiments():
    views = experiment_views(serving_state())
    return render_template(
        "dashboard/experiments.html", section="experiments", experiments=[(view, experiment_charts(view)) for view in views]
    )
