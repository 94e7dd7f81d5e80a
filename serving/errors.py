"""Every error leaves as JSON ``{"error": {"code", "message"}}``, never as HTML or a traceback.

Client mistakes raise :class:`ApiError` (or a werkzeug HTTPException such as 404,
405, 413); anything else is a bug in this code: it is logged with its traceback and
answered with a generic 500 that reveals nothing.
"""

from __future__ import annotations

import logging
import sqlite3

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from recommender.errors import NoKnownItemsError, UnknownCategoryError

log = logging.getLogger(__name__)

# Stable machine-readable codes for werkzeug's HTTP errors.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """A request the API refuses, with the HTTP status, a code and a sentence for the caller."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad_request(message: str, code: str = "bad_request") -> ApiError:
    """A 400 for a parameter or body the caller must fix."""
    return ApiError(400, code, message)


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None):
    """The JSON error body with its status (and headers such as Allow)."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    """Install the JSON handlers: API errors, HTTP errors, and the catch-all for bugs."""

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        return error_response(error.status, error.code, error.message, error.headers)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        status = error.code or 500
        # Keep protocol headers (Allow on 405, WWW-Authenticate on 401), not the HTML content type.
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        message = error.description or error.name
        if status == 404:
            message = "no such endpoint; see /openapi.json for the API"
        elif status == 413:
            message = f"request body too large; the limit is {app.config['MAX_BODY_BYTES']} bytes"
        return error_response(status, _HTTP_CODES.get(status, "http_error"), message, headers)

    @app.errorhandler(UnknownCategoryError)
    def _unknown_category(error: UnknownCategoryError):
        return error_response(400, "unknown_category", str(error))

    @app.errorhandler(NoKnownItemsError)
    def _no_known_items(error: NoKnownItemsError):
        return error_response(400, "unknown_items", str(error))

    @app.errorhandler(sqlite3.Error)
    def _event_store_error(error: sqlite3.Error):
        # A locked, full or missing disk is an outage to retry, not a bug in the request.
        log.error("event store error: %s", error)
        return error_response(503, "event_store_unavailable", "the event store is unavailable; retry shortly", {"Retry-After": "1"})

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        log.exception("unhandled error while serving a request")
        return error_response(500, "internal_error", "internal server error; the incident has been logged")
