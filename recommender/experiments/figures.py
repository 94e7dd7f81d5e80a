"""An experiment's figures, from the event store's rows: per variant the answers served,
impressions, clicks, click-through rate, attributed purchases, conversion and revenue,
the difference against the control with its interval, and the verdict.

:func:`experiment_figures` is pure (rows in, a JSON-able dict out); :func:`read_figures`
reads the rows from a store first. The API's ``/v1/experiments`` views, ``/metrics``,
``recommender experiments report`` and any page call these, so every place shows the
same numbers.

Definitions (per variant; "shown item" = an item of an answer, see
:mod:`.attribution`): ``impressions`` = shown items with an impression or a click;
``clicks`` = shown items clicked; ``ctr`` = clicks / impressions; ``purchases`` =
shown items bought within the window; ``conversion`` = impressions followed by a
purchase of that item / impressions; ``revenue`` = price x quantity of the attributed
purchases, when the catalog has prices (else null); ``revenue_per_customer`` = revenue
over the customers the variant answered (each counts, with or without a purchase), with
its interval, and for each variant its ``revenue_difference`` against the control: the
difference of two means over customers, with a normal interval from the two standard
errors at the comparisons' confidence. Whether a variant earns more is read from that
interval, not from the totals, which also differ by how many customers each variant had.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from statistics import NormalDist

import numpy as np

from ..events.records import AnswerRecord, Event
from .attribution import DEFAULT_WINDOW_SECONDS, Attribution, attribute
from .config import Experiment, ExperimentSet, Variant
from .statistics import METHOD, Rate, comparison_confidence, difference, ratio_rate, verdict

CONFIDENCE = 0.95


def catalog_prices(item_ids: Sequence[str], prices) -> dict[str, float] | None:
    """item id -> price from a catalog's price column; None when no item has a price (then
    revenue is reported as unknown, not as 0). Items without a price (NaN) add no revenue."""
    if prices is None:
        return None
    values = np.asarray(prices, dtype=np.float64)
    known = np.isfinite(values)
    if not known.any():
        return None
    return dict(zip(np.asarray(item_ids)[known].tolist(), values[known].tolist()))


def logged_experiments(answers: Sequence[AnswerRecord]) -> ExperimentSet:
    """The experiments an answer log shows, for a report without the experiments file: the
    variants in the order they first answered, each with its observed share of answers
    and the model version that served most of them; the control is the variant named
    ``control`` if there is one, else the first."""
    served: dict[str, dict[str, Counter]] = {}
    for answer in answers:
        if answer.experiment is not None and answer.variant is not None:
            served.setdefault(answer.experiment, {}).setdefault(answer.variant, Counter())[answer.model_version] += 1
    experiments = []
    for name, variants in served.items():
        total = sum(sum(models.values()) for models in variants.values())
        listed = tuple(Variant(v, models.most_common(1)[0][0], sum(models.values()) / total) for v, models in variants.items())
        control = "control" if "control" in variants else listed[0].name
        experiments.append(Experiment(name, listed, control, name, enabled=False))
    return ExperimentSet(tuple(experiments), "the answer log")


def read_figures(store, experiments: ExperimentSet, *, window: int = DEFAULT_WINDOW_SECONDS, prices: Mapping[str, float] | None = None,
                 series_points: int = 0, answers: Sequence[AnswerRecord] | None = None) -> dict[str, dict]:
    """Every experiment's figures from ``store`` (an :class:`~recommender.events.EventStore`);
    ``answers``: its answer log, when the caller has read it already (it is read whole)."""
    answers = store.answers() if answers is None else answers
    events = store.feedback_events(since=answers[0].served_at) if answers else []
    return all_figures(experiments, answers, events, window=window, prices=prices, series_points=series_points)


def all_figures(experiments: ExperimentSet, answers: Sequence[AnswerRecord], events: Sequence[Event], *, window: int = DEFAULT_WINDOW_SECONDS,
                prices: Mapping[str, float] | None = None, series_points: int = 0) -> dict[str, dict]:
    """Figures per experiment name, with events attributed once over all answers."""
    attribution = attribute(answers, events, window)
    unattributed = {"events": dict(attribution.unattributed), "reasons": dict(attribution.reasons)}
    return {
        experiment.name: {
            **experiment_figures(experiment, answers, attribution, window=window, prices=prices, series_points=series_points),
            "unattributed": unattributed,
        }
        for experiment in experiments.experiments
    }


def experiment_figures(experiment: Experiment, answers: Sequence[AnswerRecord], attribution: Attribution, *, window: int,
                       prices: Mapping[str, float] | None = None, series_points: int = 0) -> dict:
    ours = [a for a in answers if a.experiment == experiment.name]
    tallies = {v.name: _Tally() for v in experiment.variants}
    for answer in ours:
        tally = tallies.get(answer.variant)
        if tally is not None:
            tally.answers += 1
            tally.served.add(answer.customer_id or answer.recommendation_id)
    for outcome in attribution.outcomes.values():
        tally = tallies.get(outcome.answer.variant) if outcome.answer.experiment == experiment.name else None
        if tally is not None:
            tally.add(outcome, prices)
    confidence = comparison_confidence(len(experiment.variants), CONFIDENCE)
    control_rate = tallies[experiment.control].rate(experiment.metric)
    # Each variant's mean over its customers, once: an array over every customer it answered.
    revenues = {name: tally.revenue_per_customer() for name, tally in tallies.items()} if prices is not None else {}
    compared = {}
    variants = []
    for variant in experiment.variants:
        tally = tallies[variant.name]
        row = _variant_row(variant, tally, revenues.get(variant.name))
        if variant.name != experiment.control:
            rate = tally.rate(experiment.metric)
            found = difference(rate, control_rate, confidence)
            compared[variant.name] = (rate, found)
            row["difference"] = None if found is None else {
                "metric": experiment.metric, "estimate": found.estimate, "low": found.low, "high": found.high,
                "confidence": found.confidence, "p_value": found.p_value,
            }
            if revenues:
                earned = difference(revenues[variant.name], revenues[experiment.control], confidence)
                row["revenue_difference"] = None if earned is None else {
                    "estimate": round(earned.estimate, 4), "low": round(earned.low, 4), "high": round(earned.high, 4),
                    "confidence": earned.confidence, "p_value": earned.p_value,
                }
        variants.append(row)
    decided = verdict(experiment.control, control_rate, compared, experiment.minimum_detectable_effect, confidence)
    figures = {
        "name": experiment.name,
        "description": experiment.description,
        "enabled": experiment.enabled,
        "endpoints": list(experiment.endpoints),
        "control": experiment.control,
        "metric": experiment.metric,
        "minimum_detectable_effect": experiment.minimum_detectable_effect,
        "attribution_window_hours": window / 3600,
        "method": METHOD,
        "variants": variants,
        "verdict": {"status": decided.status, "text": decided.text, "variant": decided.variant, "impressions_needed": decided.impressions_needed},
        "as_of": datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    if series_points:
        figures["series"] = _series(experiment, ours, attribution, series_points, confidence)
    return figures


class _Tally:
    """One variant's counts, and per customer the shown, clicked and converted items."""

    def __init__(self):
        self.answers = self.impressions = self.clicks = self.purchases = self.converted = self.not_interested = 0
        self.quantity = self.revenue = 0.0
        self.per_customer: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # impressions, clicks, converted
        self.served: set[str] = set()  # the customers answered (an answer without one: its id)
        self.earned: dict[str, float] = defaultdict(float)  # customer -> revenue attributed to their answers

    def add(self, outcome, prices: Mapping[str, float] | None) -> None:
        customer = outcome.answer.customer_id or outcome.answer.recommendation_id
        unit = self.per_customer[customer]
        if outcome.seen:
            self.impressions += 1
            unit[0] += 1
            if outcome.click:
                self.clicks += 1
                unit[1] += 1
            if outcome.purchases:
                self.converted += 1
                unit[2] += 1
        if outcome.purchases:
            self.purchases += 1
            self.quantity += outcome.quantity
            if prices is not None:
                value = prices.get(outcome.item_id, 0.0) * outcome.quantity
                self.revenue += value
                self.earned[customer] += value
        self.not_interested += outcome.not_interested

    def revenue_per_customer(self) -> Rate:
        """Revenue over the customers answered: their mean, and its variance from the sample's
        (n - 1 divisor); no variance below two customers, where one order would read as certain."""
        customers = self.served | self.earned.keys()
        earned = np.array([self.earned.get(customer, 0.0) for customer in customers], dtype=np.float64)
        units = len(earned)
        if units == 0:
            return Rate(0, 0, 0, None, None)
        variance = float(earned.var(ddof=1)) / units if units > 1 else None
        return Rate(0, units, units, float(earned.mean()), variance)

    def rate(self, metric: str) -> Rate:
        counts = np.array(list(self.per_customer.values()), dtype=np.float64).reshape(-1, 3)
        counts = counts[counts[:, 0] > 0]
        return ratio_rate(counts[:, 1 if metric == "ctr" else 2], counts[:, 0])


def _variant_row(variant: Variant, tally: _Tally, revenue: Rate | None) -> dict:
    """The variant's figures; ``revenue``: its revenue per customer (None: no prices, no revenue)."""
    ctr, conversion = tally.rate("ctr"), tally.rate("conversion")
    return {
        "name": variant.name,
        "model": variant.model,
        "share": variant.share,
        "answers": tally.answers,
        "customers": sum(1 for unit in tally.per_customer.values() if unit[0]),
        "impressions": tally.impressions,
        "clicks": tally.clicks,
        "ctr": ctr.rate,
        "ctr_interval": _interval(ctr),
        "purchases": tally.purchases,
        "conversion": conversion.rate,
        "conversion_interval": _interval(conversion),
        "not_interested": tally.not_interested,
        "revenue": round(tally.revenue, 2) if revenue is not None else None,
        **_revenue_per_customer(revenue),
    }


def _revenue_per_customer(mean: Rate | None) -> dict:
    if mean is None or mean.rate is None:
        return {"revenue_per_customer": None, "revenue_per_customer_interval": None}
    bounds = _interval(mean, upper=None)
    return {"revenue_per_customer": round(mean.rate, 4), "revenue_per_customer_interval": bounds and [round(b, 4) for b in bounds]}



def _interval(rate: Rate, confidence: float = CONFIDENCE, upper: float | None = 1.0) -> list[float] | None:
    """The rate's interval, kept within [0, ``upper``] (None: no upper bound, as for money);
    None without a rate or its variance."""
    if rate.rate is None or rate.variance is None:
        return None
    half = NormalDist().inv_cdf(0.5 + confidence / 2) * rate.variance**0.5
    return [max(0.0, rate.rate - half), rate.rate + half if upper is None else min(upper, rate.rate + half)]


def _series(experiment: Experiment, answers: Sequence[AnswerRecord], attribution: Attribution, points: int, confidence: float) -> list[dict]:
    """The figures so far at ``points`` moments from the first answer to the last: rates
    with intervals, and the difference against the control, as they would have read then
    (by the time each item was served)."""
    if not answers:
        return []
    start, end = answers[0].served_at, answers[-1].served_at
    moments = np.unique(np.linspace(start, end, points).round().astype(np.int64)) if end > start else np.array([end])
    outcomes = sorted(attribution.outcomes.values(), key=lambda o: o.answer.served_at)
    served = np.array([o.answer.served_at for o in outcomes], dtype=np.int64)
    answer_times = np.array([a.served_at for a in answers], dtype=np.int64)
    rows = []
    # The moments only grow, so each outcome is added once to tallies that run on (the
    # series is read every few seconds by the API, /metrics and the dashboard).
    tallies = {v.name: _Tally() for v in experiment.variants}
    counted = 0
    for moment in moments.tolist():
        upto = int(np.searchsorted(served, moment, side="right"))
        for outcome in outcomes[counted:upto]:
            if outcome.answer.experiment == experiment.name and outcome.answer.variant in tallies:
                tallies[outcome.answer.variant].add(outcome, None)
        counted = upto
        control = tallies[experiment.control].rate(experiment.metric)
        row = {"at": int(moment), "answers": int(np.searchsorted(answer_times, moment, side="right")), "variants": {}}
        for name, tally in tallies.items():
            rate = tally.rate(experiment.metric)
            found = difference(rate, control, confidence) if name != experiment.control else None
            ctr, conversion = tally.rate("ctr"), tally.rate("conversion")
            row["variants"][name] = {
                "impressions": tally.impressions,
                "ctr": ctr.rate, "ctr_interval": _interval(ctr),
                "conversion": conversion.rate, "conversion_interval": _interval(conversion),
                "difference": None if found is None else [found.estimate, found.low, found.high],
            }
        rows.append(row)
    return rows
