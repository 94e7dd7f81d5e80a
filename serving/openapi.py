"""The OpenAPI 3 description of the API, served at ``/openapi.json``.

A test compares its paths and methods with the app's routes, so it cannot drift.
"""

from __future__ import annotations

import copy


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(description: str, schema: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _query(name: str, description: str, schema: dict) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


_CUSTOMER = {"name": "customer_id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 256}}
_ITEM = {"name": "item_id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 256}}
_N = _query("n", "How many items (1 to MAX_N, default 10).", {"type": "integer", "minimum": 1, "maximum": 100, "default": 10})
_READ_ERRORS = {"400": _error("A bad parameter."), "401": _error("Read token required."), "503": _error("No model loaded.")}
_WRITE_ERRORS = {
    "400": _error("Malformed JSON, a missing field or a bad value."),
    "401": _error("API token missing or wrong."),
    "413": _error("Body larger than MAX_BODY_BYTES."),
    "415": _error("Body not sent as application/json."),
}
_ITEM_LIST = {
    "type": "object",
    "properties": {
        "customer_id": {"type": "string"},
        "model_version": {"type": "string"},
        "source": {"type": "string", "enum": ["personalized", "popular"]},
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
    },
}
_EVENT = {
    "type": "object",
    "required": ["customer_id", "item_id"],
    "properties": {
        "customer_id": {"type": "string", "maxLength": 256},
        "item_id": {"type": "string", "maxLength": 256},
        "event_type": {"type": "string", "enum": ["purchase", "cart", "view"], "default": "purchase"},
        "timestamp": {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]},
        "quantity": {"type": "number", "exclusiveMinimum": 0, "default": 1},
    },
}

_DOCUMENT = {
    "openapi": "3.0.3",
    "info": {
        "title": "Recommender API",
        "version": "1",
        "description": "Personalised recommendations from purchase history. Purchases posted to /v1/events count at once.",
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "properties": {"error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}},
            },
            "Item": {
                "type": "object",
                "properties": {
                    "item_id": {"type": "string"},
                    "score": {"type": "number", "nullable": True},
                    "name": {"type": "string"},
                    "category": {"type": "string"},
                    "reason": {"type": "string"},
                },
            },
            "ItemList": _ITEM_LIST,
            "Event": _EVENT,
        },
    },
    "paths": {
        "/v1/customers/{customer_id}/recommendations": {
            "get": {
                "summary": "Top-n items for a customer (popular items when they have no history).",
                "security": [{"bearer": []}, {}],
                "parameters": [
                    _CUSTOMER,
                    _N,
                    _query("exclude", "Comma-separated item ids never to return.", {"type": "string"}),
                    _query("include", "Comma-separated item ids: choose only among these.", {"type": "string"}),
                    _query("category", "Only items of this category.", {"type": "string"}),
                    _query("include_purchased", "Allow items already bought.", {"type": "boolean", "default": False}),
                ],
                "responses": {"200": _json("Recommendations.", "ItemList"), **_READ_ERRORS},
            }
        },
        "/v1/customers/{customer_id}/rank": {
            "post": {
                "summary": "Order candidate items best first for a customer.",
                "security": [{"bearer": []}, {}],
                "parameters": [_CUSTOMER],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {"type": "string"}, "maxItems": 1000}}}}},
                },
                "responses": {"200": _json("Ranked items; unknown items last with a null score.", "ItemList"), **_READ_ERRORS, **_WRITE_ERRORS},
            }
        },
        "/v1/customers/{customer_id}/history": {
            "get": {
                "summary": "Training purchases plus events stored since.",
                "security": [{"bearer": []}, {}],
                "parameters": [_CUSTOMER],
                "responses": {"200": {"description": "History."}, **_READ_ERRORS},
            }
        },
        "/v1/items/{item_id}/similar": {
            "get": {
                "summary": "Items often bought together with this one.",
                "security": [{"bearer": []}, {}],
                "parameters": [_ITEM, _N],
                "responses": {"200": {"description": "Similar items."}, "404": _error("Unknown item."), **_READ_ERRORS},
            }
        },
        "/v1/events": {
            "post": {
                "summary": "Store one event or a batch {\"events\": [...]} (up to 1000), durably, before answering.",
                "security": [{"bearer": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"oneOf": [{"$ref": "#/components/schemas/Event"}, {"type": "object", "properties": {"events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}, "maxItems": 1000}}}]}}},
                },
                "responses": {"202": {"description": "Stored: {\"stored\": count}."}, **_WRITE_ERRORS, "503": _error("Event store unavailable.")},
            }
        },
        "/v1/model": {
            "get": {"summary": "The served model's manifest summary.", "security": [{"bearer": []}, {}], "responses": {"200": {"description": "Manifest summary."}, **_READ_ERRORS}}
        },
        "/v1/admin/reload": {
            "post": {
                "summary": "Load the model models/current points to and swap it in atomically.",
                "security": [{"bearer": []}],
                "responses": {"200": {"description": "New and previous versions."}, "401": _error("API token missing or wrong."), "409": _error("The new model failed to load; the old one keeps serving.")},
            }
        },
        "/health": {"get": {"summary": "Liveness.", "responses": {"200": {"description": "Alive."}}}},
        "/ready": {"get": {"summary": "Readiness: a model is loaded.", "responses": {"200": {"description": "Ready."}, "503": {"description": "No model yet."}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics.", "responses": {"200": {"description": "Text exposition format.", "content": {"text/plain": {}}}}}},
        "/openapi.json": {"get": {"summary": "This document.", "responses": {"200": {"description": "OpenAPI 3 document."}}}},
    },
}


def openapi_document() -> dict:
    """A fresh copy of the document (callers may not change the shared one)."""
    return copy.deepcopy(_DOCUMENT)
