"""Traffic figures for the overview, read from the app's own Prometheus metrics (what
``/metrics`` shows, every worker summed): requests per second and p50/p99 latency per
endpoint, the share of recommendation answers that are popular items, the share scored for the
request (and of those, remembered from the customer's previous request), events stored.

Counters only grow, so a rate needs two readings. Each worker keeps the readings its
overview pages took in the last :data:`WINDOW_SECONDS` and compares the newest with the
oldest, as Prometheus's ``rate()`` does over a window; on a first look it compares with
zero at the worker's start. Quantiles come from the latency histogram's buckets,
interpolated linearly inside a bucket as Prometheus's ``histogram_quantile`` does, so
they are estimates as fine as the buckets.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

WINDOW_SECONDS = 300.0
KEEP_EVERY_SECONDS = 5.0  # a reading is kept at most this often, so a page reloaded in a loop keeps at most 60
_REQUESTS = "recommender_http_requests"
_LATENCY = "recommender_http_request_duration_seconds"
_RECOMMENDATIONS = "recommender_recommendations"
_ORIGINS = "recommender_answer_origins"
_EVENTS = "recommender_events_stored"
_HIDDEN_PREFIX = "/dashboard"  # the dashboard's own pages are not the store's traffic

Route = tuple[str, str]  # (endpoint pattern, method)


@dataclass
class Reading:
    """The metrics' totals at one moment."""

    at: float
    requests: dict[Route, float] = field(default_factory=dict)
    server_errors: dict[Route, float] = field(default_factory=dict)  # status 5xx
    buckets: dict[Route, dict[float, float]] = field(default_factory=dict)  # upper bound -> cumulative count
    recommendations: dict[str, float] = field(default_factory=dict)  # source -> answers
    origins: dict[str, float] = field(default_factory=dict)  # top_lists / scored / remembered -> answers
    events_stored: float = 0.0


@dataclass
class EndpointTraffic:
    endpoint: str
    method: str
    requests: float
    per_second: float
    server_errors: float
    p50: float | None  # seconds; None without requests in the window
    p99: float | None
    p99_above_buckets: bool  # the 99th percentile lies above the largest bucket bound (p99 is then that bound)


@dataclass
class Traffic:
    seconds: float  # length of the window the figures cover
    since_start: bool  # True: compared with zero at the worker's start (a first look)
    endpoints: list[EndpointTraffic]
    recommendations: float
    popular_share: float | None  # answers of popular items / all recommendation answers
    events_stored: float
    live_share: float | None = None  # answers not from the top lists (scored or remembered) / all
    remembered_share: float | None = None  # remembered / (scored + remembered)


def read_metrics(registry: CollectorRegistry, at: float | None = None) -> Reading:
    """Sum the registry's samples by (endpoint, method), over statuses and workers."""
    reading = Reading(time.time() if at is None else at)
    for family in registry.collect():
        for sample in family.samples:
            labels = sample.labels
            if family.name == _REQUESTS and sample.name.endswith("_total"):
                route = (labels["endpoint"], labels["method"])
                reading.requests[route] = reading.requests.get(route, 0.0) + sample.value
                if labels["status"].startswith("5"):
                    reading.server_errors[route] = reading.server_errors.get(route, 0.0) + sample.value
            elif family.name == _LATENCY and sample.name.endswith("_bucket"):
                bounds = reading.buckets.setdefault((labels["endpoint"], labels["method"]), defaultdict(float))
                bounds[float(labels["le"])] += sample.value
            elif family.name == _RECOMMENDATIONS and sample.name.endswith("_total"):
                reading.recommendations[labels["source"]] = reading.recommendations.get(labels["source"], 0.0) + sample.value
            elif family.name == _ORIGINS and sample.name.endswith("_total"):
                reading.origins[labels["origin"]] = reading.origins.get(labels["origin"], 0.0) + sample.value
            elif family.name == _EVENTS and sample.name.endswith("_total"):
                reading.events_stored += sample.value
    return reading


def histogram_quantile(q: float, buckets: dict[float, float]) -> tuple[float | None, bool]:
    """(estimated q-quantile, whether it lies above the largest finite bound) from cumulative
    bucket counts keyed by upper bound (+inf included), as Prometheus computes it: linear
    interpolation inside the bucket holding rank q x total, from 0 in the first bucket."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None, False
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for upper in bounds:
        cumulative = buckets[upper]
        if cumulative >= rank and cumulative > below:
            if math.isinf(upper):
                return lower, True  # Prometheus answers the largest finite bound
            return lower + (upper - lower) * (rank - below) / (cumulative - below), False
        lower, below = (upper if not math.isinf(upper) else lower), cumulative
    return lower, True


def difference(earlier: Reading, later: Reading) -> Traffic:
    """What happened between two readings (counters reset by a restart count from zero)."""
    seconds = max(later.at - earlier.at, 1e-9)

    def grown(now: float, before: float) -> float:
        return now - before if now >= before else now

    endpoints = []
    for route in sorted(later.requests):
        if route[0].startswith(_HIDDEN_PREFIX):
            continue
        count = grown(later.requests[route], earlier.requests.get(route, 0.0))
        bounds_now, bounds_before = later.buckets.get(route, {}), earlier.buckets.get(route, {})
        window = {bound: grown(value, bounds_before.get(bound, 0.0)) for bound, value in bounds_now.items()}
        p50, _ = histogram_quantile(0.5, window)
        p99, above = histogram_quantile(0.99, window)
        errors = grown(later.server_errors.get(route, 0.0), earlier.server_errors.get(route, 0.0))
        endpoints.append(EndpointTraffic(route[0], route[1], count, count / seconds, errors, p50, p99, above))
    answers = {source: grown(value, earlier.recommendations.get(source, 0.0)) for source, value in later.recommendations.items()}
    total = sum(answers.values())
    origins = {origin: grown(value, earlier.origins.get(origin, 0.0)) for origin, value in later.origins.items()}
    live, by_origin = origins.get("scored", 0.0) + origins.get("remembered", 0.0), sum(origins.values())
    return Traffic(
        seconds=seconds,
        since_start=False,
        endpoints=endpoints,
        recommendations=total,
        popular_share=answers.get("popular", 0.0) / total if total else None,
        live_share=live / by_origin if by_origin else None,
        remembered_share=origins.get("remembered", 0.0) / live if live else None,
        events_stored=grown(later.events_stored, earlier.events_stored),
    )


class TrafficHistory:
    """One worker's recent readings, to turn totals into rates over the last few minutes."""

    def __init__(self, started: float, window_seconds: float = WINDOW_SECONDS):
        self.started = started
        self.window_seconds = window_seconds
        self._readings: deque[Reading] = deque()
        self._lock = threading.Lock()

    def observe(self, reading: Reading) -> Traffic:
        """Record ``reading`` and return the traffic since the oldest reading still in the window."""
        with self._lock:
            while self._readings and reading.at - self._readings[0].at > self.window_seconds:
                self._readings.popleft()
            baseline = self._readings[0] if self._readings and reading.at - self._readings[0].at >= 1.0 else None
            if not self._readings or reading.at - self._readings[-1].at >= KEEP_EVERY_SECONDS:
                self._readings.append(reading)
        if baseline is None:
            traffic = difference(Reading(self.started), reading)
            traffic.since_start = True
            return traffic
        return difference(baseline, reading)
