"""Per-customer endpoints: recommendations, ranking a candidate list, purchase history.

Every answer folds in the customer's events from the event store, so a purchase
posted a moment ago (to any worker) already shapes the next answer.
"""

from __future__ import annotations

from flask import Blueprint, current_app

from .auth import require_read_token
from .errors import bad_request
from .lookups import customer_history, iso_utc
from .state import new_events, served_model, serving_state
from .validation import QueryParameters, bounded_list, checked_id, json_body

customers = Blueprint("customers", __name__)


@customers.get("/customers/<customer_id>/recommendations")
@require_read_token
def recommendations(customer_id: str):
    """Top-n items for the customer; popular items when they have no history at all."""
    # The app's state and settings are fetched once: this is the storefront's hot path.
    state, config = serving_state(), current_app.config
    customer_id = checked_id(customer_id, "customer_id", config["MAX_ID_LENGTH"])
    query = QueryParameters(config)
    n = query.count()
    include = query.id_list("include")
    exclude = query.id_list("exclude") or []
    category = query.text("category")
    include_purchased = query.flag("include_purchased")
    model = served_model(state)
    result = model.recommend(
        customer_id,
        n,
        new_events=new_events(model, customer_id, state, config),
        include=include,
        exclude=exclude,
        category=category,
        include_purchased=include_purchased,
        with_reasons=config["WITH_REASONS"],
    )
    state.metrics.recommendations_by_source[result.source].inc()
    return _ranked_answer(model, result)


@customers.post("/customers/<customer_id>/rank")
@require_read_token
def rank(customer_id: str):
    """The posted candidate items ordered best first for this customer (unknown items last)."""
    customer_id = checked_id(customer_id, "customer_id")
    body = json_body()
    if not isinstance(body, dict) or "items" not in body:
        raise bad_request('the body must be a JSON object {"items": ["item id", ...]}', code="missing_field")
    candidates = bounded_list(body["items"], "items", "item ids")
    candidates = [checked_id(item_id, f"items[{k}]") for k, item_id in enumerate(candidates)]
    model = served_model()
    result = model.rank(customer_id, candidates, new_events=new_events(model, customer_id))
    return _ranked_answer(model, result)


def _ranked_answer(model, result) -> dict:
    """The JSON body shared by recommendations and rank. Items are Recommendation
    dataclasses, encoded field by field by the app's orjson provider (a score JSON
    cannot carry, NaN for an unknown candidate, is written as null)."""
    return {"customer_id": result.customer_id, "model_version": model.version, "source": result.source, "items": result.items}


@customers.get("/customers/<customer_id>/history")
@require_read_token
def history(customer_id: str):
    """What the model knows the customer bought, plus the events stored since training."""
    customer_id = checked_id(customer_id, "customer_id")
    model = served_model()
    remembered = customer_history(model, serving_state(), customer_id)
    return {
        "customer_id": customer_id,
        "model_version": model.version,
        "purchases": [{"item_id": p.item_id, "name": p.name, "category": p.category} for p in remembered.purchases],
        "events": [{**event.to_dict(), "timestamp": iso_utc(event.timestamp)} for event in remembered.events],
    }
