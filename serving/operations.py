"""Endpoints for operators and machines: liveness, readiness, metrics, model, API description."""

from __future__ import annotations

from flask import Blueprint, current_app

from .auth import require_read_token
from .errors import error_response
from .openapi import openapi_document
from .state import served_model, serving_state

operations = Blueprint("operations", __name__)
_MANIFEST_SUMMARY = ("version", "algorithm", "params", "fitted_settings", "created_at", "customers", "items", "interactions", "code_commit", "training_seconds", "metrics")


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
    manifest = served_model().manifest
    summary = {key: manifest[key] for key in _MANIFEST_SUMMARY if key in manifest}
    data = manifest.get("data")
    if isinstance(data, dict):
        summary["data"] = {k: data[k] for k in ("fingerprint", "events", "customers", "items", "events_through_id") if k in data}
    return summary


@operations.get("/openapi.json")
def openapi():
    """The OpenAPI 3 description of this API, with this server's limits."""
    return openapi_document(current_app.config)
