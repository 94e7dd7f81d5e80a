"""Per-item endpoints: customers who bought this also bought."""

from __future__ import annotations

from flask import Blueprint, current_app

from recommender.errors import UnknownIdError
from recommender.model import feedback_options

from .auth import require_read_token
from .errors import ApiError
from .lookups import similar_items
from .state import customer_feedback, served_model, serving_state
from .tracing import traced_answer
from .validation import QueryParameters, checked_id

items = Blueprint("items", __name__)


@items.get("/items/<id:item_id>/similar")
@require_read_token
def similar(item_id: str):
    """The n items most often bought together with ``item_id``; 404 when the model does not know it.

    With ``customer_id`` (optional) the answer is that customer's: their experiment
    variant serves it, items they said "not interested" in are left out, so are items of
    their history (as in their recommendations; ``include_purchased=true`` keeps them),
    and events responding to it can be attributed by customer as well as by id."""
    state, config = serving_state(), current_app.config
    item_id = checked_id(item_id, "item_id")
    query = QueryParameters(config)
    n = query.count()
    customer_id = query.text("customer_id")
    route = state.experiments.route("similar", customer_id, served_model(state))
    model = route.model
    exclude = []
    if customer_id:
        options = feedback_options(model, customer_feedback(model, customer_id, state, config))
        exclude = options["exclude"]
        if not query.flag("include_purchased"):
            exclude = [*exclude, *model.history_items(customer_id, new_events=options["new_events"], training_history=options["training_history"])]
    try:
        source, found = similar_items(model, item_id, n, exclude=exclude)
    except UnknownIdError:
        raise ApiError(404, "unknown_item", f"item {item_id!r} is not known to model {model.version}") from None
    return traced_answer(state, "similar", customer_id, route, source, found, item_id=item_id)
