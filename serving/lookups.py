"""What the JSON API and the dashboard both show, computed in one place so they never disagree:
a customer's history, an item's similar items, the served model's summary.

Recommendations need no helper here: both call :meth:`recommender.model.Model.recommend`
with :func:`serving.state.new_events`, the API on its hot path without any layer between.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from recommender.events import Event
from recommender.model import Model
from recommender.topn import Recommendation

from .state import ServingState

SIMILAR, POPULAR_INSTEAD = "similar", "popular"
_MANIFEST_SUMMARY = (
    "version", "algorithm", "params", "fitted_settings", "created_at", "customers", "items", "interactions",
    "code_commit", "training_seconds", "metrics",
)
_DATA_SUMMARY = ("fingerprint", "events", "customers", "items", "events_through_id")


@dataclass
class Purchase:
    """An item in the customer's training history (the model keeps no purchase times)."""

    item_id: str
    name: str
    category: str
    weight: float  # the confidence weight training gave it (purchases x event weights)


@dataclass
class CustomerHistory:
    """What the system remembers of a customer: training purchases and the events stored since."""

    customer_id: str
    known_to_model: bool
    purchases: list[Purchase]
    events: list[Event]  # oldest first, only those newer than the model


def customer_history(model: Model, state: ServingState, customer_id: str) -> CustomerHistory:
    """The customer's training purchases (with names and categories) and their stored events
    newer than the model (the ones the model has not learned yet)."""
    customer = model.customers.get(customer_id)
    purchases = []
    if customer >= 0:
        start, end = model.history.indptr[customer], model.history.indptr[customer + 1]
        ids, names, categories = model.labels.lists
        for item, weight in zip(model.history.indices[start:end].tolist(), model.history.data[start:end].tolist()):
            purchases.append(Purchase(ids[item], names[item], categories[item], float(weight)))
    events = state.events.for_customer(customer_id, after_id=model.events_trained_through)
    return CustomerHistory(customer_id, customer >= 0, purchases, events)


def similar_items(model: Model, item_id: str, n: int) -> tuple[str, list[Recommendation]]:
    """("similar", items bought together with ``item_id``), or ("popular", popular items) when the
    algorithm has no item-to-item notion (Gorse's fallback). Raises UnknownIdError for an unknown item."""
    try:
        return SIMILAR, model.similar_items(item_id, n)
    except NotImplementedError:  # raised only for a known item: an unknown one raised UnknownIdError
        return POPULAR_INSTEAD, [item for item in model.recommend("", n + 1).items if item.item_id != item_id][:n]


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
