"""Per-customer endpoints: recommendations, ranking a candidate list, purchase history, erasure.

Every answer folds in the customer's events from the event store, so a purchase or a
"not interested" posted a moment ago (to any worker) already shapes the next answer;
every answer is traced (:mod:`serving.tracing`): it carries a ``recommendation_id``
and is logged with the experiment variant and model that served it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from flask import Blueprint, current_app

from recommender.model import feedback_options
from recommender.topn import RecommendationList

from .auth import require_read_token, require_write_token
from .errors import ApiError, bad_request
from .experiment_holder import Route
from .lookups import customer_history, iso_utc, recommend_for
from .prepared import Prepared
from .state import ServingState, customer_feedback, served_model, serving_state
from .tracing import traced_answer
from .validation import QueryParameters, bounded_list, checked_id, json_body

customers = Blueprint("customers", __name__)


@customers.get("/customers/<id:customer_id>/recommendations")
@require_read_token
def recommendations(customer_id: str):
    """Top-n items for the customer; popular items when they have no history at all."""
    # The app's state and settings are fetched once: this is the storefront's hot path.
    state, config = serving_state(), current_app.config
    customer_id = checked_id(customer_id, "customer_id", config["MAX_ID_LENGTH"])
    query = QueryParameters(config)
    n = query.count()
    options = {"include": query.id_list("include"), "exclude": query.id_list("exclude"), "category": query.text("category")}
    options = {name: value for name, value in options.items() if value is not None}  # only those given
    if query.flag("include_purchased"):
        options["include_purchased"] = True
    found = find_recommendations(state, config, customer_id, n, **options)
    return served_recommendations(state, customer_id, *found)


# The view in two halves, which serving.hot_routes calls too: the first has no side effect
# (so the hot route can leave any failure of it to this view), the second counts and logs.
def find_recommendations(
    state: ServingState, config: Mapping[str, Any], customer_id: str, n: int, **options
) -> tuple[Route, RecommendationList | Prepared]:
    """The experiment route and the answer for a checked customer id and count (``options``:
    the checked filters, given only when set). A plain request of a customer with no feedback
    may be answered from the encoded answers kept (:mod:`serving.prepared`)."""
    route = state.experiments.route("recommendations", customer_id, served_model(state))
    feedback = customer_feedback(route.model, customer_id, state, config)
    if not (options or feedback.new_events or feedback.rejected or feedback.erasure_id):
        return route, state.prepared.answer(route.model, customer_id, n, config["WITH_REASONS"])
    return route, recommend_for(route.model, customer_id, n, feedback, with_reasons=config["WITH_REASONS"], **options)


def served_recommendations(state: ServingState, customer_id: str, route: Route, result: RecommendationList | Prepared) -> dict:
    """The answer's JSON body, counted and traced (a recommendation id, a row in the answer log)."""
    if isinstance(result, RecommendationList):
        source, origin, items, item_ids = result.source, result.origin, result.items, None
    else:
        source, origin, item_ids, encoded = result
        items = orjson.Fragment(encoded)  # the kept JSON, spliced in as it is
    state.metrics.recommendations_by_source[source].inc()
    state.metrics.answers_by_origin[origin].inc()
    return traced_answer(state, "recommendations", customer_id, route, source, items, item_ids=item_ids)


@customers.post("/customers/<id:customer_id>/rank")
@require_read_token
def rank(customer_id: str):
    """The posted candidate items ordered best first for this customer (unknown items last),
    with those in the customer's history named (``in_history``): ranked like any other, as
    a page of given items needs every one back, but recommendations would leave them out."""
    state, config = serving_state(), current_app.config
    customer_id = checked_id(customer_id, "customer_id")
    body = json_body()
    if not isinstance(body, dict) or "items" not in body:
        raise bad_request('the body must be a JSON object {"items": ["item id", ...]}', code="missing_field")
    if len(body) > 1:  # a field sent, such as "n", must not look understood
        other = next(str(name)[:64] for name in body if name != "items")
        raise bad_request(f'{other} is not a field of a rank request; the body is {{"items": ["item id", ...]}}', code="unknown_field")
    candidates = bounded_list(body["items"], "items", "item ids")
    candidates = [checked_id(item_id, f"items[{k}]") for k, item_id in enumerate(candidates)]
    route = state.experiments.route("rank", customer_id, served_model(state))
    feedback = customer_feedback(route.model, customer_id, state, config)
    options = feedback_options(route.model, feedback)
    result = route.model.rank(customer_id, candidates, **options)
    history = set(route.model.history_items(customer_id, new_events=options["new_events"], training_history=options["training_history"]))
    history.update(item for item, _ in options["new_events"])  # also items new to the model, ranked last as unknown
    in_history = [item.item_id for item in result.items if item.item_id in history]
    return traced_answer(state, "rank", customer_id, route, result.source, result.items, in_history=in_history)


@customers.get("/customers/<id:customer_id>/history")
@require_read_token
def history(customer_id: str):
    """What the model knows the customer bought, plus the events stored since training
    (nothing a model learned before the customer was erased), a page at a time: ``limit``
    of each list (at most MAX_BATCH, the default), from ``offset`` (the newest events first)."""
    state, config = serving_state(), current_app.config
    customer_id = checked_id(customer_id, "customer_id")
    query = QueryParameters(config)
    limit = query.integer("limit", 1, config["MAX_BATCH"], config["MAX_BATCH"])
    offset = query.integer("offset", 0, None, 0)
    model = served_model(state)
    remembered = customer_history(model, state, customer_id, customer_feedback(model, customer_id, state, config), limit=limit, offset=offset)
    return {
        "customer_id": customer_id,
        "model_version": model.version,
        "purchases_total": remembered.purchases_total,
        "events_total": remembered.events_total,
        "purchases": [{"item_id": p.item_id, "name": p.name, "category": p.category, "viewed_only": p.viewed_only} for p in remembered.purchases],
        "events": [{**event.to_dict(), "timestamp": iso_utc(event.timestamp)} for event in remembered.events],
    }


_SUB_RESOURCES = ("recommendations", "history", "rank")  # the routes under /customers/<id>/


@customers.delete("/customers/<id:customer_id>")
@require_write_token
def forget(customer_id: str):
    """Erase the customer: their stored events and logged answers are deleted and they join
    the erasure list, so from the next request (in every worker) no answer uses their
    history and the next training leaves them out. See docs/privacy.md."""
    state = serving_state()
    customer_id = checked_id(customer_id, "customer_id")
    head, _, last = customer_id.rpartition("/")
    if head and last in _SUB_RESOURCES:
        # Ids may hold "/", but a DELETE sent to a customer's sub-resource is far likelier a
        # mistaken URL than the erasure of a customer named "c0/history": refused as before.
        allowed = "POST" if last == "rank" else "GET"
        raise ApiError(405, "method_not_allowed", f"DELETE is not allowed on /v1/customers/<id>/{last}; "
                       "erase a customer with DELETE /v1/customers/<id>", {"Allow": allowed})
    state.answer_log.flush()  # this worker's answers to them still in memory go too
    erasure = state.events.forget(customer_id)
    state.prepared.forget(customer_id)
    for model in [state.models.model, *state.experiments.held_models()]:
        if model is not None:  # this worker's; the others' are never served again (docs/privacy.md)
            model.forget_live_answers(customer_id)
    state.metrics.erasures.inc()
    return {
        "customer_id": customer_id,
        "events_deleted": erasure.events_deleted,
        "answers_deleted": erasure.answers_deleted,
        "erased_at": iso_utc(erasure.erased_at),
    }

