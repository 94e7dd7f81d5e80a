"""The customer pages: find a customer, see what the system remembers of them, what it
recommends now and why (with the API's own filters), and what changed since the model.

Recommendations come from the same call as ``GET /v1/customers/<id>/recommendations``
(:func:`serving.lookups.recommend_for`: the customer's stored feedback applied, the same query
parameters checked by the same code, the same experiment variant), the history from :func:`serving.lookups.customer_history`
like ``GET /v1/customers/<id>/history``.
"""

from __future__ import annotations

import numpy as np
from flask import current_app, redirect, render_template, request, url_for

from recommender.model import erased_since

from ..lookups import customer_history, recommend_for
from ..state import customer_feedback, served_model, serving_state
from ..validation import QueryParameters, checked_id
from .blueprint import dashboard, error_page
from .paths import needs_query_form

BUSIEST_SHOWN = 12

# Rows of each list a page shows (the newest events, the first training purchases); the API pages through the rest.
PAGE_ROWS = 200


@dashboard.get("/customers")
def find_customer():
    """The search box's target: the customer's page, or a page to search from."""
    typed = request.args.get("id", "")
    model = served_model()
    if not typed.strip():
        return render_template("dashboard/find_customer.html", section="customers", examples=_busiest(model))
    # Ids are kept verbatim, but a space pasted around a known id is surely not part of it.
    customer_id = typed if typed in model.customers or typed.strip() not in model.customers else typed.strip()
    customer_id = checked_id(customer_id, "customer id")
    if needs_query_form(customer_id):
        return _customer_page(customer_id)
    query = {key: value for key, value in request.args.items() if key != "id"}
    return redirect(url_for("dashboard.customer", customer_id=customer_id, **query), 303)


def _busiest(model) -> list[tuple[str, int]]:
    """The BUSIEST_SHOWN customers with the longest training histories, longest first, less
    those erased since the model learned them (a list of names is no place for them)."""
    erasures = serving_state().erasures.refresh_if_readable()
    lengths = np.diff(model.history.indptr)
    considered = min(4 * BUSIEST_SHOWN, len(lengths))  # room for a few erased; all when that is not enough
    while True:
        candidates = np.argpartition(-lengths, considered - 1)[:considered] if considered < len(lengths) else np.arange(len(lengths))
        candidates = candidates[np.lexsort((candidates, -lengths[candidates]))]  # longest first, then by index
        shown = [(str(model.customers.ids[c]), int(lengths[c])) for c in candidates.tolist()]
        shown = [(customer_id, length) for customer_id, length in shown if not erasures.erased_after(customer_id, model.erasures_through)]
        if len(shown) >= BUSIEST_SHOWN or considered >= len(lengths):
            return shown[:BUSIEST_SHOWN]
        considered = min(len(lengths), considered * 8)


@dashboard.get("/customers/<path:customer_id>")
def customer(customer_id: str):
    """One customer: history, recommendations with reasons, and the effect of their new events."""
    return _customer_page(customer_id)


def _customer_page(customer_id: str):
    state, config = serving_state(), current_app.config
    customer_id = checked_id(customer_id, "customer id", config["MAX_ID_LENGTH"])
    query = QueryParameters(config)
    n = query.count()
    category = query.text("category") if request.args.get("category") else None  # the form's "any category" is empty
    include_purchased = query.flag("include_purchased")
    model = served_model(state)
    feedback = customer_feedback(model, customer_id, state, config)
    remembered = customer_history(model, state, customer_id, feedback, limit=PAGE_ROWS)
    if not remembered.known_to_model and not remembered.events:
        message = (
            f"Customer {customer_id!r} is not in the training data of model {model.version} and has no stored events "
            "since. The API answers such a customer with popular items."
        )
        return error_page(404, "Unknown customer", message)
    options = {"category": category, "include_purchased": include_purchased}
    # The model the API answers this customer with: an experiment's variant may serve another.
    route = state.experiments.route("recommendations", customer_id, model)
    if route.model is not model:
        feedback = customer_feedback(route.model, customer_id, state, config)  # that model's own cut-off
    now = recommend_for(route.model, customer_id, n, feedback, with_reasons=config["WITH_REASONS"], **options)
    # What the model alone would show: the difference is what their stored events changed
    # (without the training history of a customer erased since: the API never shows that).
    changed = feedback.new_events or feedback.rejected
    alone = {**options, "training_history": not erased_since(route.model, feedback)}
    before = route.model.recommend(customer_id, n, with_reasons=False, **alone) if changed else None
    return render_template(
        "dashboard/customer.html",
        section="customers",
        customer_id=customer_id,
        model_version=model.version,
        route=route,
        history=remembered,
        weighting=None if model.weighting.is_plain else model.weighting.describe(),
        events=[_event_row(model, event) for event in remembered.events],
        recommendations=now,
        reasons=[_reason_parts(item, route.model) for item in now.items],
        changes=_changes(before, now) if before is not None else None,
        categories=model.catalog.category_names(),
        filters={"n": n, "category": category or "", "include_purchased": include_purchased},
        max_n=config["MAX_N"],
        query_form=needs_query_form(customer_id),
    )


def _event_row(model, event) -> dict:
    """A stored event with the item's name and category when the model knows the item."""
    index = model.items.get(event.item_id)
    _, names, categories = model.labels.lists
    return {
        "event": event,
        "known": index >= 0,
        "name": names[index] if index >= 0 else "",
        "category": categories[index] if index >= 0 else "",
    }


def _reason_parts(item, model) -> list[tuple[str, str | None]]:
    """The API's reason sentence cut into (text, item id or None) parts, so that each purchase
    it names links to that item's page; the words are the API's, unchanged."""
    _, names, _ = model.labels.lists
    parts, rest = [], item.reason
    for bought in item.because:
        index = model.items.get(bought)
        at = rest.find(names[index]) if index >= 0 else -1
        if at >= 0:
            parts += [(rest[:at], None), (names[index], bought)]
            rest = rest[at + len(names[index]) :]
    parts.append((rest, None))
    return [(words, item_id) for words, item_id in parts if words]


def _changes(before, now) -> dict:
    """Items the new events brought into the list, and items they pushed out of it."""
    before_ids = [item.item_id for item in before.items]
    now_ids = [item.item_id for item in now.items]
    return {
        "added": [item for item in now.items if item.item_id not in before_ids],
        "dropped": [item for item in before.items if item.item_id not in now_ids],
        "before_source": before.source,
    }
