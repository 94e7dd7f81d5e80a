"""Experiments as pure rules, with known answers: configuration, sticky assignment,
attribution windows, the interval of a difference, the power estimate and the verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recommender.events import AnswerRecord, Event
from recommender.experiments import ExperimentConfigError, all_figures, assign, attribute, bucket, parse_experiments
from recommender.experiments.attribution import NO_ANSWER, NOT_IN_ANSWER, OTHER_CUSTOMER, OUTSIDE_WINDOW, UNKNOWN_ID
from recommender.experiments.statistics import (
    LEADING,
    NEEDS_MORE,
    NO_DIFFERENCE,
    Rate,
    difference,
    ratio_rate,
    trials_needed,
    verdict,
)

ROOT = Path(__file__).resolve().parents[1]
HOUR = 3600
HOMEPAGE = {"name": "homepage", "variants": [{"name": "control", "model": "popular", "share": 0.5}, {"name": "default", "model": "current", "share": 0.5}]}


def experiments(*entries) -> dict:
    return {"experiments": list(entries) or [HOMEPAGE]}


# -- configuration ------------------------------------------------------------------------
def test_the_issue_example_parses_with_its_defaults():
    parsed = parse_experiments(experiments())
    homepage = parsed.named("homepage")
    assert homepage.control == "control" and homepage.salt == "homepage" and homepage.endpoints == ("recommendations",)
    assert [v.name for v in homepage.treatments] == ["default"]
    assert parsed.for_endpoint("recommendations") is homepage and parsed.for_endpoint("similar") is None


@pytest.mark.parametrize(
    "change, message",
    [
        ({"variants": [{"name": "a", "model": "current", "share": 0.5}, {"name": "b", "model": "popular", "share": 0.4}]}, "add up to 0.9, not 1"),
        ({"variants": [{"name": "a", "model": "current", "share": 1.0}]}, "2 to 10 variants"),
        ({"variants": [{"name": "a", "model": "../x", "share": 0.5}, {"name": "b", "model": "popular", "share": 0.5}]}, "folder name"),
        ({"variants": [{"name": "a", "model": "current", "share": "half"}, {"name": "b", "model": "popular", "share": 0.5}]}, "share"),
        ({"name": "home page"}, "letters, digits"),
        ({"control": "nobody"}, "not one of its variants"),
        ({"endpoints": ["homepage"]}, "endpoints"),
        ({"metric": "revenue"}, "metric"),
        ({"shares": 1}, "unknown field 'shares'"),
    ],
)
def test_bad_experiments_are_refused_naming_the_field(change, message):
    with pytest.raises(ExperimentConfigError, match=message):
        parse_experiments(experiments({**HOMEPAGE, **change}), "experiments.json")


def test_two_experiments_on_one_endpoint_are_refused():
    second = {**HOMEPAGE, "name": "other"}
    with pytest.raises(ExperimentConfigError, match="both cover recommendations"):
        parse_experiments(experiments(HOMEPAGE, second))
    assert parse_experiments(experiments(HOMEPAGE, {**second, "enabled": False})).for_endpoint("recommendations").name == "homepage"


# -- assignment ---------------------------------------------------------------------------
def test_assignment_follows_the_shares_and_the_salt():
    homepage = parse_experiments(experiments({**HOMEPAGE, "variants": [
        {"name": "control", "model": "popular", "share": 0.2}, {"name": "default", "model": "current", "share": 0.8}]})).named("homepage")
    counts = {"control": 0, "default": 0}
    for k in range(20_000):
        counts[assign(homepage, f"customer-{k}").name] += 1
    assert abs(counts["control"] / 20_000 - 0.2) < 0.01
    reshuffled = parse_experiments(experiments({**HOMEPAGE, "salt": "2027"})).named("homepage")
    moved = sum(assign(reshuffled, f"customer-{k}").name != assign(homepage, f"customer-{k}").name for k in range(2000))
    assert 0.3 < moved / 2000 < 0.7  # a new salt reshuffles independently


def test_assignment_is_the_same_in_another_process():
    """Sticky across workers and restarts: no per-process state (Python's hash is salted per process)."""
    customers = [f"c{k}" for k in range(50)] + ["007", "émilie", "'; DROP TABLE"]
    script = "import json, sys; from recommender.experiments import bucket; print(json.dumps([bucket('homepage', c) for c in json.loads(sys.argv[1])]))"
    other = subprocess.run([sys.executable, "-c", script, json.dumps(customers)], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(other.stdout) == [bucket("homepage", c) for c in customers]
    # BLAKE2b of "homepage\x1fc1": fixed for ever, whatever the machine (a change would reshuffle running experiments)
    assert bucket("homepage", "c1") == pytest.approx(0.283258, abs=1e-6)


# -- attribution --------------------------------------------------------------------------
def answer(rid: str, customer: str, items: tuple[str, ...], at: int, variant: str = "default") -> AnswerRecord:
    return AnswerRecord(rid, customer, "recommendations", "homepage", variant, "v1", items, at)


def event(customer: str, item: str, kind: str, at: int, rid: str | None = None, quantity: float = 1.0) -> Event:
    return Event(customer, item, kind, quantity, at, rid)


def test_attribution_by_id_checks_the_item_and_the_window_inclusively():
    answers = [answer("r1", "c1", ("a", "b"), 1000)]
    window = 24 * HOUR
    events = [
        event("c1", "a", "click", 1000, "r1"),  # at serving time: in
        event("c1", "b", "purchase", 1000 + window, "r1", quantity=2),  # at the end of the window: in
        event("c1", "b", "click", 1001 + window, "r1"),  # one second late
        event("c1", "b", "impression", 999, "r1"),  # before it was served
        event("c1", "z", "click", 1500, "r1"),  # not in that answer
        event("c1", "a", "click", 1500, "r-unknown"),  # an id never given
        event("c2", "b", "click", 1500, "r1"),  # another customer sending c1's answer's id
    ]
    found = attribute(answers, events, window)
    assert set(found.outcomes) == {("r1", "a"), ("r1", "b")}
    assert found.outcomes[("r1", "a")].click and found.outcomes[("r1", "b")].purchases == 1
    assert found.outcomes[("r1", "b")].quantity == 2 and not found.outcomes[("r1", "b")].click
    assert found.reasons == {OUTSIDE_WINDOW: 2, NOT_IN_ANSWER: 1, UNKNOWN_ID: 1, OTHER_CUSTOMER: 1}
    assert found.unattributed == {"click": 4, "impression": 1}


def test_attribution_without_id_takes_the_customers_latest_answer_listing_the_item():
    answers = [answer("r1", "c1", ("a", "b"), 1000, "control"), answer("r2", "c1", ("a",), 2000), answer("r3", "c2", ("a",), 1500)]
    events = [
        event("c1", "a", "purchase", 2500),  # r2 is the latest answer to c1 listing a before 2500
        event("c1", "b", "purchase", 2500),  # only r1 listed b
        event("c1", "a", "click", 1999),  # before r2: r1
        event("c1", "b", "click", 1000 + 2 * HOUR + 1),  # r1 is more than 2 hours old
        event("c3", "a", "click", 1600),  # nobody showed c3 anything
    ]
    found = attribute(answers, events, 2 * HOUR)
    assert found.outcomes[("r2", "a")].purchases == 1 and found.outcomes[("r1", "b")].purchases == 1
    assert found.outcomes[("r1", "a")].click and ("r3", "a") not in found.outcomes
    assert found.reasons == {NO_ANSWER: 2}


def test_a_repeated_click_counts_once_and_rates_are_per_item_seen():
    answers = [answer("r1", "c1", ("a", "b"), 0, "control"), answer("r2", "c2", ("a", "b"), 0)]
    events = [event("c1", "a", "impression", 1, "r1"), event("c1", "b", "impression", 1, "r1"), event("c1", "a", "click", 2, "r1"),
              event("c1", "a", "click", 3, "r1"), event("c2", "b", "click", 2, "r2"), event("c2", "b", "purchase", 9, "r2")]
    figures = all_figures(parse_experiments(experiments()), answers, events)["homepage"]
    control, default = figures["variants"]
    assert (control["answers"], control["impressions"], control["clicks"], control["ctr"]) == (1, 2, 1, 0.5)
    # a click implies the item was seen; the purchase followed a seen item
    assert (default["impressions"], default["clicks"], default["ctr"], default["purchases"], default["conversion"]) == (1, 1, 1.0, 1, 1.0)
    assert control["revenue"] is None


def test_revenue_is_price_times_quantity_of_attributed_purchases():
    answers = [answer("r1", "c1", ("a", "b"), 0)]
    events = [event("c1", "a", "purchase", 5, "r1", quantity=3), event("c1", "b", "purchase", 5), event("c1", "c", "purchase", 5)]
    figures = all_figures(parse_experiments(experiments()), answers, events, prices={"a": 2.5, "b": 10.0, "c": 99.0})["homepage"]
    assert figures["variants"][1]["revenue"] == 17.5 and figures["variants"][0]["revenue"] == 0.0


def test_revenue_per_customer_counts_every_customer_answered_and_compares_with_an_interval():
    """The operator's question, "does the model earn more?", read from means over customers, not totals."""
    answers = [answer(f"r{k}", f"c{k}", ("a", "b"), 0, "control") for k in range(4)] + [answer(f"s{k}", f"d{k}", ("a", "b"), 0) for k in range(4)]
    events = [event("c0", "a", "purchase", 5, "r0"), event("d0", "a", "purchase", 5, "s0", quantity=2), event("d1", "b", "purchase", 5, "s1")]
    control, default = all_figures(parse_experiments(experiments()), answers, events, prices={"a": 10.0, "b": 5.0})["homepage"]["variants"]
    # control [10, 0, 0, 0]: mean 2.5, variance of the mean 25 / 4 (sample variance, n - 1); default [20, 5, 0, 0]: 6.25, (268.75 / 3) / 4
    assert (control["revenue"], control["revenue_per_customer"], default["revenue"], default["revenue_per_customer"]) == (10.0, 2.5, 25.0, 6.25)
    assert control["revenue_per_customer_interval"] == [0.0, pytest.approx(2.5 + 1.959964 * (25 / 4) ** 0.5, abs=1e-4)]
    found = default["revenue_difference"]
    half = 1.959964 * (25 / 4 + 268.75 / 3 / 4) ** 0.5
    assert found["estimate"] == 3.75 and (found["low"], found["high"]) == (pytest.approx(3.75 - half, abs=1e-4), pytest.approx(3.75 + half, abs=1e-4))
    assert found["p_value"] == pytest.approx(0.4835, abs=1e-3) and "revenue_difference" not in control
    # One customer in a variant: a mean, but no interval and no comparison (one order is not a certainty).
    lone = all_figures(parse_experiments(experiments()), answers[:4] + [answers[4]], events[:2], prices={"a": 10.0})["homepage"]["variants"]
    assert lone[1]["revenue_per_customer"] == 20.0 and lone[1]["revenue_per_customer_interval"] is None and lone[1]["revenue_difference"] is None
    without_prices = all_figures(parse_experiments(experiments()), answers, events)["homepage"]["variants"][1]
    assert without_prices["revenue_per_customer"] is None and "revenue_difference" not in without_prices
    from recommender.experiments.report import render_report
    from serving.dashboard.experiments import view_from_figures

    figures = all_figures(parse_experiments(experiments()), answers, events, prices={"a": 10.0, "b": 5.0})
    page = render_report(figures)
    assert "<th>revenue per customer answered</th>" in page and "6.25 <span class='small'>(0.00 to 15.53)</span>" in page
    assert f"+3.75 <span class='small'>({3.75 - half:+,.2f} to {3.75 + half:+,.2f}; p = 0.484)</span>" in page
    view = view_from_figures(figures["homepage"]).variants[1]
    assert (view.revenue_per_customer.value, view.revenue_difference.value) == (6.25, 3.75)
    from prometheus_client import CollectorRegistry, generate_latest

    from serving.metrics import ExperimentCollector

    registry = CollectorRegistry()
    registry.register(ExperimentCollector(lambda: figures))
    exposed = generate_latest(registry).decode()
    assert 'recommender_experiment_revenue_per_customer{experiment="homepage",variant="default"} 6.25' in exposed
    lone_figures = all_figures(parse_experiments(experiments()), answers[:5], events[:2], prices={"a": 10.0})
    assert "<td>20.00</td><td>–</td>" in render_report(lone_figures)


# -- statistics ---------------------------------------------------------------------------
def test_one_item_per_customer_gives_the_two_proportion_interval():
    control = ratio_rate(np.r_[np.ones(30), np.zeros(70)], np.ones(100))
    treatment = ratio_rate(np.r_[np.ones(45), np.zeros(55)], np.ones(100))
    assert control.variance == pytest.approx(0.3 * 0.7 / 100)
    found = difference(treatment, control)
    half = 1.959964 * np.sqrt(0.3 * 0.7 / 100 + 0.45 * 0.55 / 100)  # the textbook unpooled interval
    assert (found.estimate, found.low, found.high) == pytest.approx((0.15, 0.15 - half, 0.15 + half))
    assert found.significant and found.p_value == pytest.approx(0.02658, abs=1e-4)


def test_customers_seeing_many_items_widen_the_interval():
    """Two customers, ten items each: one clicks all, one none. Ten independent-looking
    trials per customer are really one: the delta method's variance is that of 2 units."""
    clustered = ratio_rate(np.array([10.0, 0.0]), np.array([10.0, 10.0]))
    assert clustered.rate == 0.5
    assert clustered.variance == pytest.approx(0.25 / 2)  # var over customers of (s - r t) / (n mean(t)²) = 25 / (2 * 100)
    assert clustered.variance > 0.5 * 0.5 / 20  # what the binomial formula would claim for 20 trials


def test_power_estimate_known_answer():
    # (1.96 + 0.8416)² (0.1 x 0.9 + 0.11 x 0.89) / 0.01² = 14,748.1
    assert trials_needed(0.1, 0.1) == 14749
    assert trials_needed(0.1, 0.1, design=2.0) == 29497


def test_verdicts():
    def rate(successes, trials):
        return ratio_rate(np.r_[np.ones(successes), np.zeros(trials - successes)], np.ones(trials))

    control = rate(100, 1000)
    leading = verdict("control", control, {"default": (rate(200, 1000), difference(rate(200, 1000), control))}, 0.1, 0.95)
    assert (leading.status, leading.text, leading.variant) == (LEADING, "default leading", "default")
    worse = verdict("control", control, {"default": (rate(50, 1000), difference(rate(50, 1000), control))}, 0.1, 0.95)
    assert worse.text == "control leading"
    early = verdict("control", control, {"default": (rate(105, 1000), difference(rate(105, 1000), control))}, 0.1, 0.95)
    assert early.status == NEEDS_MORE and early.text == f"needs {early.impressions_needed} more impressions"
    assert early.impressions_needed == 2 * trials_needed(0.1, 0.1) - 2000
    big_control = rate(10_000, 100_000)
    same = verdict("control", big_control, {"default": (rate(10_010, 100_000), difference(rate(10_010, 100_000), big_control))}, 0.1, 0.95)
    assert same.status == NO_DIFFERENCE and same.text == "no difference yet"
    nothing = verdict("control", Rate(0, 0, 0, None, None), {"default": (Rate(0, 0, 0, None, None), None)}, 0.1, 0.95)
    assert nothing.text == "needs more impressions"


def test_prices_come_from_a_catalog_column_and_none_means_unknown():
    from recommender.experiments.figures import catalog_prices

    assert catalog_prices(["a", "b"], None) is None
    assert catalog_prices(["a", "b"], np.array([np.nan, np.nan])) is None  # a catalog without prices: revenue unknown, not 0
    assert catalog_prices(["a", "b"], np.array([2.5, np.nan])) == {"a": 2.5}


def test_the_series_reads_the_rates_as_they_stood_at_each_moment():
    answers = [answer("r1", "c1", ("a", "b"), 0, "control"), answer("r2", "c2", ("a",), 100), answer("r3", "c3", ("a",), 200)]
    events = [event("c1", "a", "impression", 1, "r1"), event("c1", "b", "impression", 1, "r1"), event("c1", "a", "click", 2, "r1"),
              event("c2", "a", "impression", 101, "r2"), event("c3", "a", "click", 201, "r3")]
    series = all_figures(parse_experiments(experiments()), answers, events, series_points=3)["homepage"]["series"]
    assert [(point["at"], point["answers"]) for point in series] == [(0, 1), (100, 2), (200, 3)]
    control = [(p["variants"]["control"]["impressions"], p["variants"]["control"]["ctr"]) for p in series]
    default = [(p["variants"]["default"]["impressions"], p["variants"]["default"]["ctr"]) for p in series]
    assert control == [(2, 0.5), (2, 0.5), (2, 0.5)]
    assert default == [(0, None), (1, 0.0), (2, 0.5)]  # by the time each item was served
