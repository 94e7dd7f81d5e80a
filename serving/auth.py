"""Bearer-token checks: API_TOKEN guards writes and admin, READ_TOKEN (optional) guards reads.

Tokens are compared with :func:`hmac.compare_digest`, whose time does not depend on
where the strings differ, so a caller cannot guess a token byte by byte.
"""

from __future__ import annotations

import hmac
from functools import wraps

from flask import current_app, request

from .errors import ApiError


def presented_bearer_token() -> str:
    """The token of the request's ``Authorization: Bearer`` header ("" when there is none)."""
    return bearer_token(request.headers.get("Authorization", ""))


def bearer_token(header: str) -> str:
    """The token of an ``Authorization`` header's value ("" unless it says ``Bearer <token>``)."""
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _matches(presented: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(presented.encode("utf-8", "replace"), expected.encode("utf-8", "replace"))


def grants_read(config, presented: str) -> bool:
    """True when reads are open or ``presented`` is the read token or the API token."""
    return not config["READ_TOKEN"] or _matches(presented, config["READ_TOKEN"]) or _matches(presented, config["API_TOKEN"])


def grants_write(config, presented: str) -> bool:
    """True when writes are open or ``presented`` is the API token."""
    return not config["API_TOKEN"] or _matches(presented, config["API_TOKEN"])


def _refuse(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, {"WWW-Authenticate": 'Bearer realm="recommender"'})


def require_write_token(view):
    """Allow the request only with ``Authorization: Bearer <API_TOKEN>`` (when one is set)."""

    @wraps(view)
    def guarded(*args, **kwargs):
        expected = current_app.config["API_TOKEN"]
        if expected and not _matches(presented_bearer_token(), expected):
            raise _refuse("this endpoint needs Authorization: Bearer <API token>")
        return view(*args, **kwargs)

    return guarded


def require_read_token(view):
    """Allow the request with READ_TOKEN or API_TOKEN when a read token is set."""

    @wraps(view)
    def guarded(*args, **kwargs):
        config = current_app.config
        if config["READ_TOKEN"] and not grants_read(config, presented_bearer_token()):
            raise _refuse("this endpoint needs Authorization: Bearer <read token>")
        return view(*args, **kwargs)

    return guarded
