"""The two requests a server gets most, answered without Flask's request machinery.

``GET /health`` (load balancers, every few seconds from each; any query, which its view
ignores) and the storefront's
``GET /v1/customers/<id>/recommendations`` with no query or ``?n=<digits>``. Flask's
request context, URL map, hooks and response object cost about 50 µs per request here,
more than a cached answer itself (about 20 µs: the top list, the customer's stored
events, tracing, JSON), so these two skip them: the same view code runs (the health view,
:func:`serving.customers.find_recommendations` and ``served_recommendations``) with the
same checks (read token, id rules, ``n``'s range), the same metrics and headers, and the
same body.

Anything else goes to Flask untouched: another path, method or query, a token that does
not grant reading, an id or count the rules refuse, a missing model, an error. So every
refusal and every error reply is Flask's, written once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from flask import Flask

from recommender.ids import id_problem

from .auth import bearer_token, grants_read
from .customers import find_recommendations, served_recommendations
from .operations import health
from .state import EXTENSION
from .validation import QueryParameters, plain_query

# The two routes by their Flask rules and views; HotRoutes checks at start that the app's URL
# map still has them, so a moved route or a renamed view cannot leave a stale copy here.
HOT_VIEWS = {"/health": "operations.health", "/v1/customers/<id:customer_id>/recommendations": "customers.recommendations"}
HEALTH_RULE, RECOMMENDATIONS_RULE = HOT_VIEWS
# An id may hold "/" (sent as %2F, which the server decodes), even first: the id converter, as in Flask's rule.
_RECOMMENDATIONS_PATH = re.compile(re.escape(RECOMMENDATIONS_RULE).replace(re.escape("<id:customer_id>"), "(.*[^/])"))
_JSON = "application/json"


class HotRoutes:
    """WSGI middleware in front of the Flask app's own WSGI callable (``flask_wsgi``);
    ``headers``: the headers every reply carries (``X-Served-By``), as Flask adds them."""

    def __init__(self, app: Flask, flask_wsgi: Callable, headers: list[tuple[str, str]]):
        routed = {rule.rule: rule.endpoint for rule in app.url_map.iter_rules() if "GET" in (rule.methods or ())}
        for rule, view in HOT_VIEWS.items():
            if routed.get(rule) != view:
                raise RuntimeError(f"hot route {rule} is not Flask's GET route to {view} any more: update serving/hot_routes.py")
        self.app, self.flask_wsgi, self.headers = app, flask_wsgi, headers

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        if environ.get("REQUEST_METHOD") == "GET":
            path = environ.get("PATH_INFO", "")
            if path == HEALTH_RULE:  # its view reads no query (benchmarks vary one to defeat caches)
                return self._reply(start_response, health(), HEALTH_RULE, started)
            matched = _RECOMMENDATIONS_PATH.fullmatch(path)
            if matched is not None:
                answer = self._recommendations(environ, matched.group(1))
                if answer is not None:
                    return self._reply(start_response, answer, RECOMMENDATIONS_RULE, started)
        return self.flask_wsgi(environ, start_response)

    def _recommendations(self, environ, raw_id: str) -> dict | None:
        """The answer, or None when Flask must handle the request (to refuse it, or for
        anything but the plain case)."""
        config = self.app.config
        args = plain_query(environ.get("QUERY_STRING", "").encode("latin-1"))
        if args is None:
            return None
        if config["READ_TOKEN"] and not grants_read(config, bearer_token(environ.get("HTTP_AUTHORIZATION", ""))):
            return None
        try:
            customer_id = raw_id.encode("latin-1").decode("utf-8")  # WSGI gives the path's bytes as latin-1
        except UnicodeError:
            return None
        if id_problem(customer_id, config["MAX_ID_LENGTH"]) is not None:
            return None
        state = self.app.extensions[EXTENSION]
        try:
            found = find_recommendations(state, config, customer_id, QueryParameters(config, args).count())
        except Exception:  # noqa: BLE001 - a count out of range, no model, a bug: nothing was served or
            return None  # logged yet, so Flask runs the request and gives its reply (and its log line)
        return served_recommendations(state, customer_id, *found)

    def _reply(self, start_response, answer: dict, rule: str, started: float):
        body = self.app.json.body(answer)
        start_response("200 OK", [("Content-Type", _JSON), ("Content-Length", str(len(body))), *self.headers])
        self.app.extensions[EXTENSION].metrics.count_request(rule, "GET", 200, time.perf_counter() - started)
        return [body]
