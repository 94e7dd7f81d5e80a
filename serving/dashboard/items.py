"""The item page: name, category, buyers, items bought with it (the API's similar items) and
in how many customers' precomputed top lists it appears."""

from __future__ import annotations

import numpy as np
from flask import redirect, render_template, request, url_for

from ..erasure_list import KnownErasures
from ..lookups import similar_items
from ..state import served_model, serving_state
from ..validation import checked_id
from .blueprint import dashboard, error_page
from .paths import needs_query_form

BUYERS_SHOWN = 20
SIMILAR_SHOWN = 10


@dashboard.get("/items")
def find_item():
    """The item search box's target."""
    typed = request.args.get("id", "")
    if not typed.strip():
        return error_page(400, "Which item?", "Type an item id into the search box.")
    model = served_model()
    item_id = checked_id(typed if typed in model.items or typed.strip() not in model.items else typed.strip(), "item id")
    if needs_query_form(item_id):
        return _item_page(item_id)
    return redirect(url_for("dashboard.item", item_id=item_id), 303)


@dashboard.get("/items/<path:item_id>")
def item(item_id: str):
    return _item_page(item_id)


def _item_page(item_id: str):
    item_id = checked_id(item_id, "item id")
    model = served_model()
    index = model.items.get(item_id)
    if index < 0:
        message = (
            f"Item {item_id!r} is not in model {model.version}. Items first seen in stored events are learned by the next training."
        )
        return error_page(404, "Unknown item", message)
    _, names, categories = model.labels.lists
    source, similar = similar_items(model, item_id, SIMILAR_SHOWN)
    appearances = model.top_list_appearances
    return render_template(
        "dashboard/item.html",
        section="items",
        item_id=item_id,
        name=names[index],
        category=categories[index],
        model_version=model.version,
        buyers=int(model.popular.buyers[index]),
        popularity_rank=int(np.flatnonzero(model.popular.order == index)[0]) + 1,
        items_in_model=len(model.items),
        some_buyers=_buyers(model, index, BUYERS_SHOWN, serving_state().erasures),
        similar=similar,
        similar_source=source,
        in_top_lists=None if appearances is None else int(appearances[index]),
        top_list_length=None if model.top_lists is None else model.top_lists.k,
        customers_in_model=len(model.customers),
    )


def _buyers(model, item: int, limit: int, erasures: KnownErasures) -> list[str]:
    """The first ``limit`` training customers who bought ``item`` (one pass over the history's
    indices), less those erased since the model learned them: the erasure list is read up to
    now first (as it last was, when the store cannot be read)."""
    erasures.refresh_if_readable()
    positions = np.flatnonzero(model.history.indices == item)
    shown: list[str] = []
    for start in range(0, len(positions), limit):  # a popular item's buyers looked at a few at a time
        rows = np.searchsorted(model.history.indptr, positions[start : start + limit], side="right") - 1
        shown += [c for c in model.customers.ids[rows].tolist() if not erasures.erased_after(c, model.erasures_through)]
        if len(shown) >= limit:
            break
    return shown[:limit]
