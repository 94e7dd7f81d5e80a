"""The OpenAPI 3 description of the API, served at ``/openapi.json``.

The document is built from the app's settings, so the limits it states (MAX_N,
MAX_BATCH, MAX_ID_LENGTH) are the ones the server enforces. It is precise enough to
fuzz from: ``tests/test_fuzz_api.py`` generates thousands of requests from it and
checks every answer against the documented statuses and response schemas, and
``tests/test_api.py`` compares its paths and methods with the app's routes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recommender.weights import accepted_event_types

from .config import DEFAULTS
from .openapi_experiments import TRACE, experiment_paths, experiment_schemas
from .validation import IDEMPOTENCY_KEY_LENGTH, RECOMMENDATION_ID_LENGTH

# Ids are any text without C0/C1 control characters (serving/validation.py refuses those).
ID_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, description: str, schema: dict, *, repeatable: bool = False) -> dict:
    """A query parameter; ``repeatable``: it may be given more than once (``exclude=a&exclude=b``),
    said by the ``x-repeatable`` extension. Any other given twice is a 400, not the first taken."""
    parameter = {"name": name, "in": "query", "required": False, "description": description, "schema": schema}
    return {**parameter, "x-repeatable": True} if repeatable else parameter


def _object(properties: dict, required: list[str] | None = None, *, closed: bool = False) -> dict:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if closed:  # a field not listed is a 400 (unknown_field), not ignored
        schema["additionalProperties"] = False
    return schema


# OpenAPI 3.0 (not JSON Schema 2020): exclusiveMinimum/Maximum are booleans beside minimum/maximum.
def _schemas(limits: Mapping[str, Any]) -> dict:
    max_id, max_batch = limits["MAX_ID_LENGTH"], limits["MAX_BATCH"]
    identifier = {"type": "string", "minLength": 1, "maxLength": max_id, "pattern": ID_PATTERN}
    event = _object(
        {
            "customer_id": identifier,
            "item_id": identifier,
            "event_type": {"type": "string", "enum": accepted_event_types(limits["EVENT_WEIGHTS"]), "default": "purchase"},
            "timestamp": {
                "description": "ISO 8601 text (naive = UTC) or epoch seconds, from 1970 to a day after the server's clock (400 when later); now when absent.",
                "anyOf": [{"type": "string", "format": "date-time", "maxLength": 64}, {"type": "number", "minimum": 0, "maximum": 1e11, "exclusiveMaximum": True}],
            },
            "quantity": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1e6, "default": 1},
            "recommendation_id": {
                "description": "The answer this event responds to (any id is stored; one the server never gave counts as unattributed).",
                "type": "string", "minLength": 1, "maxLength": RECOMMENDATION_ID_LENGTH, "pattern": ID_PATTERN, "nullable": True,
            },
            "idempotency_key": {
                "description": "Your own id for this event (an order line's id, a UUID), sent again unchanged when you retry: "
                               "an event whose customer already has this key is not stored twice (nor its revenue counted twice).",
                "type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_LENGTH, "pattern": ID_PATTERN, "nullable": True,
            },
        },
        ["customer_id", "item_id"],
        closed=True,
    )
    item = _object(
        {
            "item_id": {"type": "string"},
            "score": {"type": "number", "nullable": True},
            "name": {"type": "string"},
            "category": {"type": "string"},
            "reason": {"type": "string"},
            "because": {"type": "array", "items": {"type": "string"}, "description": "Ids of the customer's items the reason names (bought, or only viewed: the reason says which)."},
            "position": {"type": "integer", "minimum": 1, "description": "1-based place in the answer."},
        },
        ["item_id", "score", "name", "category", "reason", "because", "position"],
    )
    history_event = _object(
        {
            "customer_id": {"type": "string"},
            "item_id": {"type": "string"},
            "event_type": {"type": "string"},
            "quantity": {"type": "number"},
            "timestamp": {"type": "string"},
            "recommendation_id": {"type": "string", "nullable": True},
            "idempotency_key": {"type": "string", "nullable": True},
        },
        ["customer_id", "item_id", "event_type", "quantity", "timestamp", "recommendation_id", "idempotency_key"],
    )
    purchase = _object({"item_id": {"type": "string"}, "name": {"type": "string"}, "category": {"type": "string"},
                        "viewed_only": {"type": "boolean", "description": "Learned from views, clicks or carts: never bought."}},
                       ["item_id", "viewed_only"])
    return {
        "Id": identifier,
        "Error": _object(
            {"error": _object({"code": {"type": "string", "minLength": 1}, "message": {"type": "string", "minLength": 1}}, ["code", "message"])},
            ["error"],
        ),
        "Item": item,
        "ItemList": _object(
            {
                "customer_id": {"type": "string"},
                "model_version": {"type": "string"},
                "source": {"type": "string", "enum": ["personalised", "popular"]},
                **TRACE,
                "items": {"type": "array", "items": _ref("Item")},
            },
            ["customer_id", "model_version", "source", *TRACE, "items"],
        ),
        "RankedItems": _object(
            {
                "in_history": {"type": "array", "items": {"type": "string"},
                               "description": "The ranked candidates in the customer's history (bought, or viewed since the model), "
                                              "which their recommendations leave out: a page may mark or move them."},
                "customer_id": {"type": "string"},
                "model_version": {"type": "string"},
                "source": {"type": "string", "enum": ["personalised", "popular"]},
                **TRACE,
                "items": {"type": "array", "items": _ref("Item")},
            },
            ["in_history", "customer_id", "model_version", "source", *TRACE, "items"],
        ),
        "SimilarItems": _object(
            {
                "item_id": {"type": "string"},
                "customer_id": {"type": "string", "nullable": True},
                "model_version": {"type": "string"},
                "source": {"type": "string", "enum": ["similar", "popular"]},
                **TRACE,
                "items": {"type": "array", "items": _ref("Item")},
            },
            ["item_id", "customer_id", "model_version", "source", *TRACE, "items"],
        ),
        "History": _object(
            {
                "customer_id": {"type": "string"},
                "model_version": {"type": "string"},
                "purchases_total": {"type": "integer", "minimum": 0, "description": "Training purchases in all (this answer holds one page)."},
                "events_total": {"type": "integer", "minimum": 0, "description": "Events stored since the model in all."},
                "purchases": {"type": "array", "items": purchase},
                "events": {"type": "array", "items": history_event,
                           "description": "A page of the events received since the model, in the order they were received (not by "
                                          "their own timestamps); offset 0 is the page received last."},
            },
            ["customer_id", "model_version", "purchases_total", "events_total", "purchases", "events"],
        ),
        "Event": event,
        "EventBatch": _object({"events": {"type": "array", "items": _ref("Event"), "minItems": 1, "maxItems": max_batch}}, ["events"], closed=True),
        "Stored": _object({"stored": {"type": "integer", "minimum": 0},
                           "already_stored": {"type": "integer", "minimum": 0, "description": "Events not stored again: their customer already had their idempotency_key."}},
                          ["stored", "already_stored"]),
        "CandidateItems": _object({"items": {"type": "array", "items": identifier, "minItems": 1, "maxItems": max_batch}}, ["items"], closed=True),
        "ModelSummary": _object(
            {
                "version": {"type": "string"},
                "algorithm": {"type": "string"},
                "params": {"type": "object", "description": "the hyper-parameters it was trained with"},
                "fitted_settings": {"type": "object", "description": "settings it chose itself on held-out purchases"},
            },
            ["version", "algorithm"],
        ),
        "Reloaded": _object({"model_version": {"type": "string"}, "previous_version": {"type": "string", "nullable": True}}, ["model_version"]),
        "Status": _object({"status": {"type": "string"}, "model_version": {"type": "string"}}, ["status"]),
        **experiment_schemas(),
    }


def _document(limits: Mapping[str, Any]) -> dict:
    max_n, default_n, max_batch = limits["MAX_N"], limits["DEFAULT_N"], limits["MAX_BATCH"]
    in_path = "Percent-encoded: an id may hold '/' (sent as %2F; not as its last character), and any other character but control characters."
    customer = {"name": "customer_id", "in": "path", "required": True, "schema": _ref("Id"), "description": in_path}
    item = {"name": "item_id", "in": "path", "required": True, "schema": _ref("Id"), "description": in_path}
    n = _query("n", f"How many items (1 to MAX_N = {max_n}).", {"type": "integer", "minimum": 1, "maximum": max_n, "default": default_n})
    id_list = {"type": "string", "description": f"Comma-separated ids, at most {max_batch}."}
    read_errors = {"400": _error("A bad parameter."), "401": _error("Read token required."), "503": _error("No model loaded.")}
    body_errors = {
        "400": _error("Malformed JSON, a missing field or a bad value."),
        "413": _error("Body larger than MAX_BODY_BYTES."),
        "415": _error("Body not sent as application/json."),
    }
    # Security as this server enforces it: a bearer token where one is configured, none otherwise.
    write = [{"bearer": []}] if limits["API_TOKEN"] else []
    read = [{"bearer": []}] if limits["READ_TOKEN"] else []
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Recommender API",
            "version": "1",
            "description": (
                "Personalised recommendations from purchase history. Purchases posted to /v1/events count at once. "
                "Every error is JSON {\"error\": {\"code\", \"message\"}}; ids are 1 to "
                f"{limits['MAX_ID_LENGTH']} characters without control characters."
            ),
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": _schemas(limits)},
        "paths": {
            "/v1/customers/{customer_id}/recommendations": {
                "get": {
                    "summary": "Top-n items for a customer (popular items when they have no history).",
                    "security": read,
                    "parameters": [
                        customer,
                        n,
                        _query("exclude", "Comma-separated item ids never to return (repeatable).", id_list, repeatable=True),
                        _query("include", "Comma-separated item ids: choose only among these (ids the model does not know are ignored; "
                                          "400 unknown_items when it knows none; repeatable).", id_list, repeatable=True),
                        _query("category", "Only items of this category.", _ref("Id")),
                        _query("include_purchased", "Allow items already bought.", {"type": "boolean", "default": False}),
                    ],
                    "responses": {"200": _json("Recommendations.", _ref("ItemList")), **read_errors},
                }
            },
            "/v1/customers/{customer_id}/rank": {
                "post": {
                    "summary": "Order candidate items best first for a customer.",
                    "security": read,
                    "parameters": [customer],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("CandidateItems")}}},
                    "responses": {"200": _json("Ranked items; unknown items last with a null score.", _ref("RankedItems")), **read_errors, **body_errors},
                }
            },
            "/v1/customers/{customer_id}/history": {
                "get": {
                    "summary": "Training purchases plus events stored since, a page at a time.",
                    "security": read,
                    "parameters": [
                        customer,
                        _query("limit", "At most this many of each list (purchases, events) per answer.",
                               {"type": "integer", "minimum": 1, "maximum": max_batch, "default": max_batch}),
                        _query("offset", "Skip this many of each list: the first purchases (in the model's order), the events received last. "
                                         "Page on while offset is below purchases_total or events_total.",
                               {"type": "integer", "minimum": 0, "maximum": 999_999_999, "default": 0}),
                    ],
                    "responses": {"200": _json("History.", _ref("History")), **read_errors},
                }
            },
            "/v1/items/{item_id}/similar": {
                "get": {
                    "summary": "Items often bought together with this one.",
                    "security": read,
                    "parameters": [item, n,
                                   _query("customer_id", "The customer it is shown to: their experiment variant answers, their \"not interested\" items "
                                          "and the items of their history (as in their recommendations) are left out.", _ref("Id")),
                                   _query("include_purchased", "With customer_id: keep the items of their history.", {"type": "boolean", "default": False})],
                    "responses": {"200": _json("Similar items.", _ref("SimilarItems")), "404": _error("Unknown item."), **read_errors},
                }
            },
            "/v1/events": {
                "post": {
                    "summary": f"Store one event or a batch {{\"events\": [...]}} (up to {max_batch}), durably, before answering.",
                    "security": write,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"oneOf": [_ref("Event"), _ref("EventBatch")]}}},
                    },
                    "responses": {
                        "202": _json("Stored (committed to disk) before this answer.", _ref("Stored")),
                        "409": _error("An idempotency_key its customer already has for another event (item, type, quantity or "
                                      "recommendation_id): nothing of the request was stored."),
                        "401": _error("API token missing or wrong."),
                        **body_errors,
                        "503": _error("Event store unavailable; retry."),
                    },
                }
            },
            "/v1/customers/{customer_id}": {
                "delete": {
                    "summary": "Forget a customer: their stored events and logged answers are deleted; answers stop using their history.",
                    "security": write,
                    "parameters": [customer],
                    "responses": {
                        "200": _json("What was deleted.", _ref("Erased")),
                        "400": _error("A bad customer id."),
                        "401": _error("API token missing or wrong."),
                        "503": _error("Event store unavailable; retry."),
                    },
                }
            },
            **experiment_paths(read, read_errors, _json, _error, _ref),
            "/v1/model": {
                "get": {
                    "summary": "The served model's manifest summary.",
                    "security": read,
                    "responses": {"200": _json("Manifest summary.", _ref("ModelSummary")), "401": _error("Read token required."), "503": _error("No model loaded.")},
                }
            },
            "/v1/admin/reload": {
                "post": {
                    "summary": "Load the model models/current points to and swap it in atomically.",
                    "security": write,
                    "responses": {
                        "200": _json("New and previous versions.", _ref("Reloaded")),
                        "401": _error("API token missing or wrong."),
                        "409": _error("The new model failed to load; the old one keeps serving."),
                    },
                }
            },
            "/health": {"get": {"summary": "Liveness.", "responses": {"200": _json("Alive.", _ref("Status"))}}},
            "/ready": {
                "get": {"summary": "Readiness: a model is loaded.", "responses": {"200": _json("Ready.", _ref("Status")), "503": _error("No model yet.")}}
            },
            "/metrics": {"get": {"summary": "Prometheus metrics.", "responses": {"200": {"description": "Text exposition format.", "content": {"text/plain": {}}}}}},
            "/openapi.json": {"get": {"summary": "This document.", "responses": {"200": _json("OpenAPI 3 document.", {"type": "object"})}}},
        },
    }


def openapi_path(rule: str) -> str:
    """A Flask rule as the document names its path: ``/v1/customers/<id:customer_id>/history``
    is ``/v1/customers/{customer_id}/history`` (the ``id`` converter lets ids hold "/")."""
    return rule.replace("<id:", "<").replace("<", "{").replace(">", "}")


def query_parameters(document: dict) -> dict[tuple[str, str], dict[str, bool]]:
    """(path, METHOD) -> the query parameters the document gives that operation: name -> whether it is repeatable."""
    return {
        (path, method.upper()): {p["name"]: p.get("x-repeatable", False) for p in operation.get("parameters", ()) if p["in"] == "query"}
        for path, operations in document["paths"].items() for method, operation in operations.items()
    }


def openapi_document(settings: Mapping[str, Any] | None = None) -> dict:
    """The document for ``settings`` (an app's config; the defaults when None), freshly built."""
    limits = dict(DEFAULTS)
    limits.update({k: v for k, v in (settings or {}).items() if k in DEFAULTS})
    limits["DEFAULT_N"] = min(limits["DEFAULT_N"], limits["MAX_N"])
    return _document(limits)
