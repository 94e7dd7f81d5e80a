"""Operator actions on the served model. Guarded by API_TOKEN."""

from __future__ import annotations

from flask import Blueprint

from recommender.errors import ArtifactError
from recommender.model import Model

from .auth import require_write_token
from .errors import ApiError
from .state import ServingState, serving_state

admin = Blueprint("admin", __name__)


@admin.post("/reload")
@require_write_token
def reload_model():
    """Load the model the model path points to now and swap it in; the old one serves until then."""
    model, previous = reload_served_model(serving_state())
    return {"model_version": model.version, "previous_version": previous.version if previous is not None else None}


def reload_served_model(state: ServingState) -> tuple[Model, Model | None]:
    """Swap in the model the model path points to now: (new, previous). A model that fails to
    load raises a 409 ApiError and the previous one keeps serving. The dashboard's promote
    and roll back end here too."""
    previous = state.models.model
    try:
        model = state.models.reload()
    except ArtifactError as error:
        kept = f"still serving {previous.version}" if previous is not None else "no model is served yet"
        raise ApiError(409, "reload_failed", f"the model could not be loaded, {kept}: {error}") from None
    return model, previous
