"""The OpenAPI pieces of tracing, experiments and erasure (see :mod:`serving.openapi`)."""

from __future__ import annotations

from collections.abc import Callable

_NULLABLE_NUMBER = {"type": "number", "nullable": True}
_INTERVAL = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2, "nullable": True}

#: The fields every answer carries to trace it.
TRACE = {
    "recommendation_id": {"type": "string", "minLength": 1, "description": "Unique id of this answer; send it with impressions, clicks and purchases."},
    "experiment": {"type": "string", "nullable": True, "description": "The experiment that served it (null outside experiments)."},
    "variant": {"type": "string", "nullable": True, "description": "The experiment's variant that served it."},
}


def _object(properties: dict, required: list[str]) -> dict:
    return {"type": "object", "properties": properties, "required": required}


def experiment_schemas() -> dict:
    variant = _object(
        {
            "name": {"type": "string"},
            "model": {"type": "string"},
            "share": {"type": "number"},
            "answers": {"type": "integer", "minimum": 0},
            "customers": {"type": "integer", "minimum": 0},
            "impressions": {"type": "integer", "minimum": 0},
            "clicks": {"type": "integer", "minimum": 0},
            "ctr": _NULLABLE_NUMBER,
            "ctr_interval": _INTERVAL,
            "purchases": {"type": "integer", "minimum": 0},
            "conversion": _NULLABLE_NUMBER,
            "conversion_interval": _INTERVAL,
            "not_interested": {"type": "integer", "minimum": 0},
            "revenue": {**_NULLABLE_NUMBER, "description": "Attributed revenue; null when the catalog has no prices."},
            "difference": {
                "type": "object",
                "nullable": True,
                "description": "This variant's metric minus the control's, with its interval (absent for the control).",
                "properties": {k: {"type": "number"} for k in ("estimate", "low", "high", "confidence", "p_value")} | {"metric": {"type": "string"}},
            },
        },
        ["name", "model", "share", "answers", "impressions", "clicks", "ctr", "purchases", "conversion", "revenue"],
    )
    verdict = _object(
        {
            "status": {"type": "string", "enum": ["leading", "no difference yet", "needs more impressions"]},
            "text": {"type": "string"},
            "variant": {"type": "string", "nullable": True},
            "impressions_needed": {"type": "integer", "nullable": True},
        },
        ["status", "text"],
    )
    experiment = _object(
        {
            "name": {"type": "string"},
            "status": {"type": "string"},
            "enabled": {"type": "boolean"},
            "control": {"type": "string"},
            "metric": {"type": "string", "enum": ["ctr", "conversion"]},
            "method": {"type": "string"},
            "attribution_window_hours": {"type": "number"},
            "variants": {"type": "array", "items": variant},
            "verdict": verdict,
            "unattributed": {
                "type": "object",
                "description": "Store-wide: feedback events no logged answer explains, by event type and by reason (unknown id, outside the window, ...).",
                "properties": {"events": {"type": "object"}, "reasons": {"type": "object"}},
            },
            "series": {
                "type": "array",
                "description": "The figures as they read at up to 12 moments from the first answer to the last: per variant "
                               "impressions, ctr and conversion with their intervals, and the difference against the control.",
                "items": {
                    "type": "object",
                    "properties": {"at": {"type": "integer", "description": "epoch seconds"}, "answers": {"type": "integer"},
                                   "variants": {"type": "object"}},
                },
            },
        },
        ["name", "status", "control", "metric", "method", "variants", "verdict", "unattributed"],
    )
    return {
        "Experiment": experiment,
        "ExperimentList": _object(
            {"source": {"type": "string", "nullable": True}, "error": {"type": "string", "nullable": True},
             "experiments": {"type": "array", "items": {"$ref": "#/components/schemas/Experiment"}}},
            ["source", "error", "experiments"],
        ),
        "Erased": _object(
            {"customer_id": {"type": "string"}, "events_deleted": {"type": "integer", "minimum": 0},
             "answers_deleted": {"type": "integer", "minimum": 0}, "erased_at": {"type": "string"}},
            ["customer_id", "events_deleted", "answers_deleted", "erased_at"],
        ),
    }


def experiment_paths(read: list, read_errors: dict, json: Callable, error: Callable, ref: Callable) -> dict:
    only_token = {k: v for k, v in read_errors.items() if k == "401"}
    return {
        "/v1/experiments": {
            "get": {
                "summary": "Every configured experiment with its online figures and verdict.",
                "security": read,
                "responses": {"200": json("Experiments.", ref("ExperimentList")), **only_token},
            }
        },
        "/v1/experiments/{name}": {
            "get": {
                "summary": "One experiment's figures per variant, the difference against the control (95% interval) and the verdict.",
                "security": read,
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": ref("Id")}],
                "responses": {"200": json("The experiment.", ref("Experiment")), "404": error("No experiment of that name."), **only_token},
            }
        },
    }
