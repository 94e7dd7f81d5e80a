"""The dashboard blueprint and what every page shares: access checks, HTML error pages,
security headers, the per-app dashboard state.

The page modules (:mod:`.overview`, :mod:`.customers`, :mod:`.items`, :mod:`.models`,
:mod:`.experiments`) add their routes to :data:`dashboard`; the hooks here run for the
dashboard's requests only, never for the JSON API's.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, current_app, render_template, request
from werkzeug.exceptions import HTTPException

from recommender.errors import UnknownCategoryError

from ..errors import ApiError
from . import access
from .formatting import breakable, duration, iso_time, milliseconds, percent, score, thousands, when
from .paths import customer_url, item_url
from .traffic import TrafficHistory

log = logging.getLogger(__name__)
PACKAGE = Path(__file__).resolve().parents[1]
EXTENSION = "recommender.dashboard"

dashboard = Blueprint(
    "dashboard",
    __name__,
    template_folder=str(PACKAGE / "templates"),
    static_folder=str(PACKAGE / "static"),
    static_url_path="/static",
)

# No script may run on any page (there is none), nothing is loaded from elsewhere, and no
# other site may frame a page. Charts are inline SVG, which this policy allows.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_OPEN_ENDPOINTS = ("dashboard.login", "dashboard.static", "dashboard.not_found")


@dataclass
class DashboardState:
    """Per app (and worker): when it started, and its recent metric readings."""

    started: float
    traffic: TrafficHistory


@dashboard.record_once
def _attach_state(setup_state) -> None:
    started = time.time()
    setup_state.app.extensions[EXTENSION] = DashboardState(started, TrafficHistory(started))


def dashboard_state() -> DashboardState:
    return current_app.extensions[EXTENSION]


@dashboard.before_request
def _check_access():
    if request.method == "POST" and not access.from_this_site():
        return error_page(403, "Refused", "This form was sent from another site. Open the dashboard and use its own form.")
    if request.endpoint in _OPEN_ENDPOINTS or access.may_read():
        return None
    return render_template("dashboard/login.html", next_url=request.full_path.rstrip("?"), failed=False), 401, _CHALLENGE


_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="recommender"'}


@dashboard.after_request
def _security_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "dashboard.static":
        headers.setdefault("Cache-Control", "no-store")  # pages show customers' histories
    return response


def error_page(status: int, title: str, message: str, headers: dict[str, str] | None = None):
    """An HTML error page with the dashboard's navigation, so a person can go on from it."""
    return render_template("dashboard/error.html", status=status, title=title, message=message), status, headers or {}


_TITLES = {400: "That did not work", 401: "Sign in", 403: "Refused", 404: "Not found", 405: "Not allowed", 409: "Not done", 503: "Unavailable"}


@dashboard.errorhandler(ApiError)
def _api_error(error: ApiError):
    # The JSON API's own checks (ids, parameters, no model yet) raise these; shown as a page here.
    headers = {k: v for k, v in error.headers.items() if k.lower() == "retry-after"}
    return error_page(error.status, _TITLES.get(error.status, "Error"), error.message, headers)


@dashboard.errorhandler(UnknownCategoryError)
def _unknown_category(error: UnknownCategoryError):
    return error_page(400, "Unknown category", str(error))


@dashboard.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    status = error.code or 500
    return error_page(status, _TITLES.get(status, error.name), error.description or error.name)


@dashboard.errorhandler(sqlite3.Error)
def _event_store_error(error: sqlite3.Error):
    log.error("event store error on a dashboard page: %s", error)
    return error_page(503, "Event store unavailable", "The event store cannot be read just now; reload in a moment.", {"Retry-After": "1"})


@dashboard.errorhandler(Exception)
def _unexpected(error: Exception):
    log.exception("unhandled error on a dashboard page")
    return error_page(500, "Something went wrong", "The page could not be shown; the incident has been logged.")


@dashboard.get("/<path:anything>")
def not_found(anything: str):
    return error_page(404, "Not found", "There is no such dashboard page.")


@dashboard.context_processor
def _page_context() -> dict:
    return {"signed_in": access.signed_in(), "customer_url": customer_url, "item_url": item_url}


for _filter in (milliseconds, percent, score, thousands, when, duration, iso_time, breakable):
    dashboard.add_app_template_filter(_filter)
