"""Per-item endpoints: customers who bought this also bought."""

from __future__ import annotations

from flask import Blueprint

from recommender.errors import UnknownIdError

from .auth import require_read_token
from .errors import ApiError
from .lookups import similar_items
from .state import served_model
from .validation import QueryParameters, checked_id

items = Blueprint("items", __name__)


@items.get("/items/<item_id>/similar")
@require_read_token
def similar(item_id: str):
    """The n items most often bought together with ``item_id``; 404 when the model does not know it."""
    item_id = checked_id(item_id, "item_id")
    n = QueryParameters().count()
    model = served_model()
    try:
        source, found = similar_items(model, item_id, n)
    except UnknownIdError:
        raise ApiError(404, "unknown_item", f"item {item_id!r} is not known to model {model.version}") from None
    return {"item_id": item_id, "model_version": model.version, "source": source, "items": found}
