"""Endpoints for operators and machines: liveness, readiness, metrics, model, API description."""

from __future__ import annotations

from flask import Blueprint, current_app

from .auth import require_read_token
from .errors import error_response
from .lookups import model_summary as summarise_manifest
from .openapi import openapi_document
from .state import served_model, serving_state

operations = Blueprint("operations", __name__)


@operations.get("/health")
def health():
    """The process answers: nothing else is checked (the framework's cost floor)."""
    return {"status": "ok"}


@operations.get("/ready")
def ready():
    """200 once a model is loaded, 503 before: load balancers send traffic only when ready."""
    model = serving_state().models.current()
    if model is None:
        reason = serving_state().models.last_error or "no model loaded yet"
        return error_response(503, "model_unavailable", f"not ready: {reason}")
    return {"status": "ready", "model_version": model.version}


@operations.get("/metrics")
def metrics():
    """Prometheus text format, summed over every worker process."""
    return serving_state().metrics.exposition()


@operations.get("/v1/model")
@require_read_token
def model_summary():
    """What is being served: version, algorithm, parameters, sizes, training data and metrics."""
    return summarise_manifest(served_model().manifest)


@operations.get("/openapi.json")
def openapi():
    """The OpenAPI 3 description of this API, with this server's limits."""
    return openapi_document(current_app.config)
