"""Operator actions on the served model. Guarded by API_TOKEN."""

from __future__ import annotations

from flask import Blueprint

from recommender.errors import ArtifactError

from .auth import require_write_token
from .errors import ApiError
from .state import serving_state

admin = Blueprint("admin", __name__)


@admin.post("/reload")
@require_write_token
def reload_model():
    """Load the model the model path points to now and swap it in; the old one serves until then."""
    state = serving_state()
    previous = state.models.model
    try:
        model = state.models.reload()
    except ArtifactError as error:
        kept = previous.version if previous is not None else None
        raise ApiError(409, "reload_failed", f"the model could not be loaded, still serving {kept}: {error}") from None
    return {"model_version": model.version, "previous_version": previous.version if previous is not None else None}
