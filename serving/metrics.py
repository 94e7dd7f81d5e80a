"""Prometheus metrics: requests and latency per endpoint and status, fallbacks, events, model.

Under gunicorn every worker is its own process, so counters live in files under
``PROMETHEUS_MULTIPROC_DIR`` (set up by ``serving/gunicorn.conf.py``) and
``/metrics`` adds up all workers' files. Without that variable (tests, the
development server) the app keeps its metrics in memory.

The metric objects belong to the app (one registry per ``create_app``), so several
apps in one test process never collide.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from recommender.topn import PERSONALISED, POPULAR, REMEMBERED, SCORED, TOP_LISTS

log = logging.getLogger(__name__)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def multiprocess_mode() -> bool:
    """True when the production launcher has set up a shared metrics folder."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def forget_dead_workers() -> list[int]:
    """Drop the live gauges of workers that are gone (their counters stay: counts are kept).

    gunicorn tells us when a worker exits (``child_exit``); granian does not, so the dead
    are found by pid among the files: called when a worker starts and on every scrape.
    """
    from prometheus_client import multiprocess

    pids = set()
    for name in os.listdir(os.environ["PROMETHEUS_MULTIPROC_DIR"]):
        if name.startswith("gauge_live") and name.endswith(".db"):
            pid = name[: -len(".db")].rpartition("_")[2]
            if pid.isdigit():
                pids.add(int(pid))
    dead = sorted(pid for pid in pids if pid != os.getpid() and not _alive(pid))
    for pid in dead:
        multiprocess.mark_process_dead(pid)
    return dead


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


class ServingMetrics:
    """The app's metric objects and the hooks that fill them."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "recommender_http_requests", "HTTP requests served", ["endpoint", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "recommender_http_request_duration_seconds",
            "Time to serve a request, from routing to the response",
            ["endpoint", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.recommendations = Counter(
            "recommender_recommendations",
            "Recommendation lists served, by source (popular = fallback for customers without history)",
            ["source"],
            registry=self.registry,
        )
        # Children bound once: labels() costs microseconds on every recommendation answer.
        self.recommendations_by_source = {source: self.recommendations.labels(source) for source in (PERSONALISED, POPULAR)}
        self.answer_origins = Counter(
            "recommender_answer_origins",
            "Recommendation lists by origin: the top lists computed at training, scored for the request, "
            "or remembered (a live answer kept from the customer's previous request, no event since)",
            ["origin"],
            registry=self.registry,
        )
        self.answers_by_origin = {origin: self.answer_origins.labels(origin) for origin in (TOP_LISTS, SCORED, REMEMBERED)}
        self.prepared_answers_encoded = Counter(
            "recommender_prepared_answers_encoded",
            "Plain top-list answers encoded and kept by a worker (PREPARED_ANSWERS_MB); the other top_lists answers were served from them",
            registry=self.registry,
        )
        self.events_stored = Counter("recommender_events_stored", "Events written to the event store", registry=self.registry)
        self.events_already_stored = Counter(
            "recommender_events_already_stored", "Events sent again with an idempotency key their customer had (retries), not stored twice",
            registry=self.registry)
        self.model_reloads = Counter("recommender_model_reloads", "Model loads by outcome", ["outcome"], registry=self.registry)
        self.erasures = Counter("recommender_customer_erasures", "Customers erased (DELETE /v1/customers/<id>)", registry=self.registry)
        self.answers_not_logged = Counter(
            "recommender_answers_not_logged", "Answers the answer log dropped (buffer full or store unavailable)", registry=self.registry
        )
        self._experiment_figures: Callable[[], dict] | None = None
        self._by_request: dict[tuple[str, str, int], tuple] = {}
        self.blas_threads = Gauge(
            "recommender_worker_blas_threads",
            "BLAS threads a worker's numpy uses (1 in the production server: one per worker, the cores shared by workers)",
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.model_info = Gauge(
            "recommender_model_info",
            "The model a worker serves (value 1), labelled with its version and algorithm",
            ["version", "algorithm"],
            registry=self.registry,
            multiprocess_mode="liveall",
        )

    def init_app(self, app: Flask) -> None:
        """Time every request and count it by endpoint (the route pattern, never the raw path)."""

        @app.before_request
        def _start_timer():
            g.started = time.perf_counter()

        @app.after_request
        def _record(response):
            started = g.get("started")
            endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
            self.count_request(endpoint, request.method, response.status_code, None if started is None else time.perf_counter() - started)
            return response

    def count_request(self, endpoint: str, method: str, status: int, seconds: float | None) -> None:
        """One request served: counted, and its time observed when known. ``endpoint`` is a
        route pattern, so the label sets stay bounded; written without its converter
        (``<id:customer_id>`` as ``<customer_id>``), as the labels read before ids could hold "/"."""
        key = (endpoint, method, status)
        children = self._by_request.get(key)
        if children is None:
            # Bound once per label set: labels() costs microseconds on every request.
            labels = (endpoint.replace("<id:", "<"), method, str(status))
            children = self._by_request[key] = (self.requests.labels(*labels), self.latency.labels(*labels))
        children[0].inc()
        if seconds is not None:
            children[1].observe(seconds)

    def model_swapped(self, previous, model) -> None:
        """Point the model-info gauge at the new model."""
        if previous is not None:
            self.model_info.labels(previous.version, previous.algorithm.name).set(0)
        self.model_info.labels(model.version, model.algorithm.name).set(1)
        self.model_reloads.labels("loaded").inc()

    def watch_experiments(self, figures: Callable[[], dict]) -> None:
        """Export the experiments' figures (``figures()``: name -> figures) at every scrape."""
        self._experiment_figures = figures
        if not multiprocess_mode():
            self.registry.register(ExperimentCollector(figures))

    def exposition(self) -> Response:
        """The Prometheus text format, summed over all workers in multiprocess mode.

        Experiment figures come from the shared event store, so the worker that answers
        the scrape exports them for all workers (never summed)."""
        return Response(generate_latest(self.readable_registry()), content_type=CONTENT_TYPE_LATEST)  # mimetype= adds a second charset

    def readable_registry(self) -> CollectorRegistry:
        """What ``/metrics`` shows, to collect from: every worker's metrics in multiprocess
        mode, this app's otherwise (the dashboard reads its traffic figures from here)."""
        if multiprocess_mode():
            from prometheus_client import multiprocess

            forget_dead_workers()
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            if self._experiment_figures is not None:
                registry.register(ExperimentCollector(self._experiment_figures))
            return registry
        return self.registry


class ExperimentCollector:
    """Per experiment and variant: counts as counters, rates and the difference against the
    control as gauges. Labels come from the experiments file only (at most 20 experiments
    of 10 variants), never from requests, so the label sets stay bounded. A count can fall
    when a customer is erased (their answers leave the log); Prometheus reads that as a reset."""

    COUNTS = ("answers", "impressions", "clicks", "purchases", "not_interested")

    def __init__(self, figures: Callable[[], dict]):
        self.figures = figures

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        labels = ["experiment", "variant"]
        counts = {name: CounterMetricFamily(f"recommender_experiment_{name}", f"{name.replace('_', ' ').capitalize()} per variant (attributed)", labels=labels)
                  for name in self.COUNTS}
        revenue = CounterMetricFamily("recommender_experiment_revenue", "Attributed revenue per variant (catalog prices)", labels=labels)
        per_customer = GaugeMetricFamily("recommender_experiment_revenue_per_customer",
                                         "Attributed revenue over the customers each variant answered (catalog prices)", labels=labels)
        rates = {name: GaugeMetricFamily(f"recommender_experiment_{name}", f"{name} per variant", labels=labels) for name in ("ctr", "conversion")}
        gap = GaugeMetricFamily(
            "recommender_experiment_difference", "The verdict metric's difference against the control, with its interval", labels=[*labels, "bound"]
        )
        try:
            every = self.figures()
        except Exception:  # an unreadable store must not take the other metrics down with it
            log.exception("experiment figures unavailable for /metrics")
            every = {}
        for name, figures in every.items():
            for variant in figures["variants"]:
                key = [name, variant["name"]]
                for count in self.COUNTS:
                    counts[count].add_metric(key, variant[count])
                if variant["revenue"] is not None:
                    revenue.add_metric(key, variant["revenue"])
                if variant.get("revenue_per_customer") is not None:
                    per_customer.add_metric(key, variant["revenue_per_customer"])
                for rate in rates:
                    if variant[rate] is not None:
                        rates[rate].add_metric(key, variant[rate])
                found = variant.get("difference")
                if found:
                    for bound in ("estimate", "low", "high"):
                        gap.add_metric([*key, bound], found[bound])
        lost = CounterMetricFamily(
            "recommender_unattributed_events", "Impressions, clicks, purchases and rejections no logged answer explains (store-wide, counted while an experiment is configured)",
            labels=["event_type"],
        )
        for event_type, count in next(iter(every.values()), {}).get("unattributed", {}).get("events", {}).items():
            lost.add_metric([event_type], count)  # event types of ATTRIBUTED_TYPES only: a bounded set
        yield from counts.values()
        yield lost
        yield revenue
        yield per_customer
        yield from rates.values()
        yield gap
