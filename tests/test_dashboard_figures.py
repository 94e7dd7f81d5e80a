"""Known answers for what the dashboard computes: quantiles from histogram buckets, rates
over a window of metric readings, top-list appearances, and the SVG charts."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp
from prometheus_client import CollectorRegistry, Counter, Histogram

from recommender.algorithms import create_algorithm
from recommender.model import Model
from recommender.topn import TopLists
from recommender.vocabulary import IdVocabulary
from serving.dashboard import charts
from serving.dashboard.experiments import Rate, experiment_charts, view_from_figures
from serving.dashboard.traffic import Reading, TrafficHistory, difference, histogram_quantile, read_metrics

INF = float("inf")


def test_histogram_quantile_interpolates_inside_the_bucket_as_prometheus_does():
    # 10 observations: 4 up to 1 ms, 4 more up to 5 ms, 2 more up to 10 ms.
    buckets = {0.001: 4, 0.005: 8, 0.01: 10, INF: 10}
    assert histogram_quantile(0.5, buckets) == (pytest.approx(0.001 + 0.004 * (5 - 4) / 4), False)
    assert histogram_quantile(0.4, buckets) == (pytest.approx(0.001), False)
    assert histogram_quantile(0.99, buckets) == (pytest.approx(0.005 + 0.005 * (9.9 - 8) / 2), False)
    assert histogram_quantile(0.2, buckets) == (pytest.approx(0.0005), False)  # from 0 inside the first bucket
    # Observations above the largest bound: Prometheus answers that bound, and we say so.
    assert histogram_quantile(0.99, {0.001: 1, 0.01: 1, INF: 10}) == (pytest.approx(0.01), True)
    assert histogram_quantile(0.5, {0.001: 0, INF: 0}) == (None, False)


def _registry(requests: int, slow: int, popular: int, personalised: int, origins: tuple[int, int, int] = (0, 0, 0)):
    registry = CollectorRegistry()
    counter = Counter("recommender_http_requests", "", ["endpoint", "method", "status"], registry=registry)
    latency = Histogram("recommender_http_request_duration_seconds", "", ["endpoint", "method", "status"], buckets=(0.001, 0.01), registry=registry)
    answers = Counter("recommender_recommendations", "", ["source"], registry=registry)
    events = Counter("recommender_events_stored", "", registry=registry)
    by_origin = Counter("recommender_answer_origins", "", ["origin"], registry=registry)
    for origin, count in zip(("top_lists", "scored", "remembered"), origins):
        by_origin.labels(origin).inc(count)
    for k in range(requests):
        status = "500" if k < slow else "200"
        counter.labels("/v1/x", "GET", status).inc()
        latency.labels("/v1/x", "GET", status).observe(0.005 if k < slow else 0.0005)
    counter.labels("/dashboard/", "GET", "200").inc()
    answers.labels("popular").inc(popular)
    answers.labels("personalised").inc(personalised)
    events.inc(7)
    return registry


def test_readings_sum_statuses_and_a_window_gives_rates():
    earlier = read_metrics(_registry(requests=10, slow=0, popular=1, personalised=1, origins=(2, 0, 0)), at=100.0)
    later = read_metrics(_registry(requests=30, slow=10, popular=2, personalised=6, origins=(4, 1, 3)), at=110.0)
    assert later.requests[("/v1/x", "GET")] == 30 and later.server_errors[("/v1/x", "GET")] == 10
    traffic = difference(earlier, later)
    (route,) = traffic.endpoints  # the dashboard's own pages are left out
    assert (route.endpoint, route.requests, route.per_second, route.server_errors) == ("/v1/x", 20, 2.0, 10)
    # In the window: 10 fast (<= 1 ms) and 10 slow (1-10 ms) requests.
    assert route.p50 == pytest.approx(0.001) and route.p99 == pytest.approx(0.001 + 0.009 * 9.8 / 10)
    assert traffic.recommendations == 6 and traffic.popular_share == pytest.approx(1 / 6)
    # 6 answers in the window: 2 from the top lists, 1 scored, 3 remembered.
    assert traffic.live_share == pytest.approx(4 / 6) and traffic.remembered_share == pytest.approx(3 / 4)
    assert traffic.events_stored == 0


def test_traffic_history_compares_with_the_oldest_reading_in_the_window():
    history = TrafficHistory(started=0.0, window_seconds=60)
    first = history.observe(Reading(10.0, requests={("/v1/x", "GET"): 10.0}))
    assert first.since_start and first.endpoints[0].per_second == pytest.approx(1.0)
    second = history.observe(Reading(20.0, requests={("/v1/x", "GET"): 30.0}))
    assert not second.since_start and second.seconds == 10 and second.endpoints[0].per_second == pytest.approx(2.0)
    later = history.observe(Reading(75.0, requests={("/v1/x", "GET"): 140.0}))  # the reading at 10 s left the window
    assert later.seconds == 55 and later.endpoints[0].requests == 110
    restarted = difference(Reading(0.0, requests={("/v1/x", "GET"): 50.0}), Reading(1.0, requests={("/v1/x", "GET"): 5.0}))
    assert restarted.endpoints[0].requests == 5  # counters reset by a restart count from zero


def test_top_list_appearances_count_each_item_once_per_list():
    items = IdVocabulary(["a", "b", "c", "d"])
    customers = IdVocabulary(["x", "y", "z"])
    history = sp.csr_matrix(np.eye(3, 4, dtype=np.float32))
    lists = TopLists(np.array([[1, 2], [2, -1], [1, 3]], dtype=np.int32), np.zeros((3, 2), dtype=np.float32))
    model = Model(create_algorithm("popular").fit(history), customers, items, history, top_lists=lists)
    assert model.top_list_appearances.tolist() == [0, 2, 2, 1]
    assert Model(create_algorithm("popular").fit(history), customers, items, history).top_list_appearances is None


def test_bars_are_proportional_and_labels_escaped():
    svg = str(charts.grouped_bars(
        [("<b>group</b>", [charts.Bar("s1", 0.5), charts.Bar("s2", 1.0, 0.8, 1.2)])], title="t & u", value_text=lambda v: f"{v:.1f}"
    ))
    assert "&lt;b&gt;group&lt;/b&gt;" in svg and "<b>" not in svg and "<title id=\"chart-" in svg and "t &amp; u" in svg
    widths = [float(w) for w in re.findall(r'<rect x="0" y="[\d.]+" width="([\d.]+)"', svg)]
    span = charts.WIDTH - 90
    assert widths == [pytest.approx(span * 0.5 / 1.2, abs=0.1), pytest.approx(span * 1.0 / 1.2, abs=0.1)]  # scale to the interval's end
    assert 'stroke="#222"' in svg  # the interval whisker


def test_experiment_figures_become_a_view_with_charts():
    """Figures in the shape GET /v1/experiments/<name> answers (issue 18) are drawn per variant and over time."""
    figures = {
        "name": "homepage", "method": "two-proportion z, 95%", "verdict": {"status": "leading", "text": "default leads"},
        "variants": [
            {"name": "control", "model": "popular", "answers": 100, "impressions": 1000, "clicks": 50, "purchases": 5,
             "ctr": 0.05, "ctr_interval": [0.04, 0.06], "conversion": 0.005, "conversion_interval": [0.002, 0.01]},
            {"name": "default", "model": "current", "answers": 100, "impressions": 1000, "clicks": 80, "purchases": 9,
             "ctr": 0.08, "ctr_interval": [0.065, 0.095], "conversion": None, "conversion_interval": None},
        ],
        "series": [
            {"at": 1764547200 + 3600 * hour, "variants": {name: {"ctr": value, "ctr_interval": [value - 0.01, value + 0.01]}
                                                         for name, value in zip(("control", "default"), values)}}
            for hour, values in ((0, (0.05, 0.07)), (1, (0.05, 0.09)))
        ],
    }
    view = view_from_figures(figures)
    assert view.verdict == "default leads" and view.variants[0].click_through == Rate(0.05, 0.04, 0.06)
    assert view.variants[1].conversion is None and [p.at for p in view.over_time] == [1764547200] * 2 + [1764547200 + 3600] * 2
    drawn = experiment_charts(view)
    rates, over_time = str(drawn["rates"]), str(drawn["over_time"])
    assert rates.count("<rect x=\"0\"") == 3  # two click-through bars, one conversion bar (the other has none)
    assert "8.0%" in rates and "control" in rates and "default" in rates
    assert over_time.count("<polygon") == 2 and over_time.count("<circle") == 4 and "2025-12-01 00:00" in over_time
    assert "2025-12-01 01:00" in over_time


def test_moments_seconds_apart_are_drawn_apart_in_proportion():
    """A short experiment's moments share a minute label; they are placed by their time."""
    points = [charts.Point(1000 + at, "1970-01-01 00:16", value) for at, value in ((0, 0.1), (10, 0.2), (40, 0.3))]
    svg = str(charts.lines_over_time({"v": points}, title="t", value_text=str))
    xs = [float(x) for x in re.findall(r'<circle cx="([\d.]+)"', svg)]
    assert xs[0] < xs[1] < xs[2] and (xs[1] - xs[0]) * 3 == pytest.approx(xs[2] - xs[1], abs=0.2)
