"""What the JSON API and the dashboard both show, computed in one place so they never disagree:
a customer's recommendations and history (with their stored feedback applied: new events folded
in, "not interested" items left out, nothing learned before an erasure used), an item's similar
items, the served model's summary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from recommender.events import CustomerFeedback, Event
from recommender.experiments import read_figures
from recommender.model import Model, erased_since, feedback_options
from recommender.topn import Recommendation, RecommendationList
from recommender.topn.reasons import POPULAR_REASON

from .state import ServingState

SIMILAR, POPULAR_INSTEAD = "similar", "popular"
_MANIFEST_SUMMARY = (
    "version", "algorithm", "params", "fitted_settings", "created_at", "customers", "items", "interactions",
    "code_commit", "training_seconds", "pipeline_seconds", "metrics",
)
SERIES_POINTS = 12  # moments of an experiment's rates over time, for its charts
_DATA_SUMMARY = ("fingerprint", "events", "customers", "items", "events_through_id")


@dataclass
class Purchase:
    """An item in the customer's training history (the model keeps no purchase times)."""

    item_id: str
    name: str
    category: str
    weight: float  # the confidence weight training gave it (purchases x event weights)
    viewed_only: bool = False  # only views, clicks or carts reached it (Model.browsed)


@dataclass
class CustomerHistory:
    """What the system remembers of a customer: training purchases and the events stored since."""

    customer_id: str
    known_to_model: bool
    purchases: list[Purchase]
    events: list[Event]  # in the order stored, only those newer than the model
    erased: bool = False  # erased after the model learned them: their training purchases are not shown or used
    purchases_total: int = 0  # of the whole history; ``purchases`` and ``events`` may be one page of it
    events_total: int = 0


def recommend_for(
    model: Model, customer_id: str, n: int, feedback: CustomerFeedback, *, exclude: list[str] | None = None, **options
) -> RecommendationList:
    """:meth:`Model.recommend` for a customer with their stored feedback (``options``: its keyword
    arguments, such as ``include``, ``category``, ``with_reasons``)."""
    return model.recommend(customer_id, n, **feedback_options(model, feedback, exclude or []), **options)


def customer_history(model: Model, state: ServingState, customer_id: str, feedback: CustomerFeedback, *,
                     limit: int | None = None, offset: int = 0) -> CustomerHistory:
    """The customer's training purchases (with names and categories) and their stored events
    newer than the model (the ones the model has not learned yet); no training purchases once
    the customer was erased after the model learned them.

    ``limit`` (None: all) and ``offset`` give one page of each list: ``limit`` purchases from
    the ``offset``-th in the model's order, and ``limit`` events back from the ``offset``-th
    newest (still in the order stored), so that page 0 shows what happened last. A customer
    of 20,000 events was one answer of 3 MB."""
    customer = model.customers.get(customer_id)
    purchases, purchases_total = [], 0
    erased = customer >= 0 and erased_since(model, feedback)
    if customer >= 0 and not erased:
        start, end = int(model.history.indptr[customer]), int(model.history.indptr[customer + 1])
        purchases_total = end - start
        first = min(start + offset, end)
        last = end if limit is None else min(first + limit, end)
        ids, names, categories = model.labels.lists
        viewed = model.viewed_in_training(customer)
        for item, weight in zip(model.history.indices[first:last].tolist(), model.history.data[first:last].tolist()):
            purchases.append(Purchase(ids[item], names[item], categories[item], float(weight), item in viewed))
    events = state.events.for_customer(customer_id, after_id=model.events_trained_through)
    events_total = len(events)
    newest = max(events_total - offset, 0)
    events = events[0 if limit is None else max(newest - limit, 0):newest]
    return CustomerHistory(customer_id, customer >= 0, purchases, events, erased, purchases_total, events_total)


def similar_items(model: Model, item_id: str, n: int, *, exclude: list[str] | None = None) -> tuple[str, list[Recommendation]]:
    """("similar", items bought together with ``item_id``, topped up with popular items when too
    few were), or ("popular", popular items) when the algorithm has no item-to-item notion
    (Gorse's fallback) or nothing was ever bought with the item; ``exclude`` left out either way.
    Raises UnknownIdError for an unknown item."""
    try:
        found = model.similar_items(item_id, n, exclude=exclude)
        # Bought-together items come first: when the first is a popular top-up, none was.
        return (POPULAR_INSTEAD if found and found[0].reason == POPULAR_REASON else SIMILAR), found
    except NotImplementedError:  # raised only for a known item: an unknown one raised UnknownIdError
        found = [item for item in model.recommend("", n + 1, exclude=exclude).items if item.item_id != item_id][:n]
        for position, item in enumerate(found, 1):
            item.position = position  # fresh objects: recommend("") is never cached
        return POPULAR_INSTEAD, found


def current_figures(state: ServingState, config: Mapping[str, Any]) -> dict[str, dict]:
    """Every configured experiment's figures, by name, from
    :func:`recommender.experiments.read_figures` (the report command's function too), with
    ``SERIES_POINTS`` moments of the rates over time. A worker recomputes them at most every
    ``EXPERIMENT_FIGURES_SECONDS`` (the answer log and events are read whole), after writing
    its own buffered answers; answers still buffered in other workers (at most
    ``ANSWER_LOG_FLUSH_SECONDS`` old) count from the next computation."""
    running = state.experiments.experiments

    def compute() -> dict:
        state.answer_log.flush()
        window = int(math.ceil(config["ATTRIBUTION_HOURS"] * 3600))
        return read_figures(state.events, running, window=window, prices=state.figures.prices(state.models.model),
                            series_points=SERIES_POINTS)

    if not running.experiments:
        return {}
    return state.figures.get(running, compute)


def model_summary(manifest: dict) -> dict:
    """What ``GET /v1/model`` answers: version, algorithm, parameters, sizes, training data, metrics."""
    summary = {key: manifest[key] for key in _MANIFEST_SUMMARY if key in manifest}
    data = manifest.get("data")
    if isinstance(data, dict):
        summary["data"] = {key: data[key] for key in _DATA_SUMMARY if key in data}
    return summary


def iso_utc(epoch_seconds: int) -> str:
    """Epoch seconds as ISO 8601 UTC text, as the API writes event times ("2025-03-01T12:00:00Z")."""
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
