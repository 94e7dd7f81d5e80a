"""Checking what callers send: query parameters, ids, JSON bodies, events.

Each function returns clean Python values or raises a 400 :class:`ApiError` whose
message names the field and says what would be accepted.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from typing import Any

from flask import current_app, request

from recommender.events import Event
from recommender.ids import EMPTY, id_problem
from recommender.timestamps import MAX_ABS_EPOCH_SECONDS, iso_time, parse_iso_timestamp
from recommender.weights import accepted_event_types

from .errors import ApiError, bad_request

_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")
RECOMMENDATION_ID_LENGTH = 64  # ours are 16 + 1 + up to 16 characters
IDEMPOTENCY_KEY_LENGTH = 128  # the client's own (an order line's id, a UUID), with room for a prefix
_COUNT = re.compile(r"[0-9]{1,9}")  # ASCII digits only (int() would also take " +3" and full-width digits)
_COUNT_ONLY = re.compile(rb"n=\d{1,9}")  # a whole query string that werkzeug would read as {"n": digits}


def checked_id(value: Any, field: str, limit: int | None = None) -> str:
    """A customer or item id by the rules of :mod:`recommender.ids`, at most ``limit``
    characters (the app's MAX_ID_LENGTH when not given)."""
    if not isinstance(value, str):
        raise bad_request(f"{field} must be a string, not {type(value).__name__}")
    problem = api_id_problem(value, current_app.config["MAX_ID_LENGTH"] if limit is None else limit)
    if problem is not None:
        raise bad_request(f"{field} must not be empty" if problem == EMPTY else f"{field} {problem}")
    return value


def api_id_problem(value: str, limit: int) -> str | None:
    """:func:`recommender.ids.id_problem`, and one rule of the API's own: JSON can spell a lone
    surrogate (``"\\ud800"``), which no UTF-8 text holds and no store can write."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text (it holds a lone surrogate such as \\ud800)"
    return id_problem(value, limit)


def path_is_utf8(environ: dict) -> bool:
    """Whether the request's path is valid UTF-8 (WSGI gives its bytes as latin-1 text).
    werkzeug decodes invalid bytes to U+FFFD, so every undecodable id would name one and the
    same customer; an id spelled with a real U+FFFD stays an id like any other."""
    try:
        environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
    except UnicodeError:
        return False
    return True


def plain_query(query: bytes) -> dict[str, str] | None:
    """The storefront's usual query, nothing or ``n=<digits>``, read without werkzeug's
    parser (6 µs to build its MultiDict); None for any other query."""
    if not query:
        return {}
    if _COUNT_ONLY.fullmatch(query):
        return {"n": query[2:].decode("ascii")}
    return None


class QueryParameters:
    """The request's query parameters, checked against the app's limits.

    ``request`` and ``current_app`` are context-local proxies, each look-up about 1 µs:
    reading five parameters through them cost 16 µs of a 130 µs cached answer, so they
    are fetched once here. Absent names are tested with ``in``, because werkzeug's
    ``MultiDict.get`` raises and catches a KeyError for each of them. ``args``: the
    parameters, when the caller has read them already (:func:`plain_query`).
    """

    def __init__(self, config: Mapping[str, Any] | None = None, args: Mapping[str, str] | None = None):
        if args is None:
            args = plain_query(request.query_string)
        self.args: Mapping[str, str] = request.args if args is None else args
        self.config = current_app.config if config is None else config

    def count(self, name: str = "n") -> int:
        """An integer from 1 to MAX_N (DEFAULT_N when absent)."""
        return self.integer(name, 1, self.config["MAX_N"], self.config["DEFAULT_N"])

    def integer(self, name: str, low: int, high: int | None, default: int) -> int:
        """An integer from ``low`` to ``high`` (None: no upper bound), ``default`` when absent."""
        if name not in self.args:
            return default
        raw = self.args[name]
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        if not _COUNT.fullmatch(raw):
            raise bad_request(f"{name} must be an integer {bounds}, not {raw[:40]!r}")
        value = int(raw)
        if value < low or (high is not None and value > high):
            raise bad_request(f"{name} must be an integer {bounds}, not {value}")
        return value

    def id_list(self, name: str) -> list[str] | None:
        """A comma-separated list of item ids (``exclude=a,b``, repeatable); None when absent."""
        if name not in self.args:
            return None
        ids = [part.strip() for value in self.args.getlist(name) for part in value.split(",") if part.strip()]
        limit = self.config["MAX_BATCH"]
        if len(ids) > limit:
            raise bad_request(f"{name} lists {len(ids)} ids; at most {limit} are allowed")
        id_limit = self.config["MAX_ID_LENGTH"]
        return [checked_id(item_id, f"{name} item id", id_limit) for item_id in ids]

    def flag(self, name: str, default: bool = False) -> bool:
        """A true/false parameter (also 1/0, yes/no)."""
        if name not in self.args:
            return default
        raw = self.args[name]
        text = raw.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise bad_request(f"{name} must be true or false (1/0, yes/no), not {raw[:40]!r}")

    def text(self, name: str) -> str | None:
        """An optional short text such as ``category``; None when absent."""
        if name not in self.args:
            return None
        return checked_id(self.args[name], name, self.config["MAX_ID_LENGTH"])


def _refuse_a_long_stream() -> None:
    """413 for a body sent without Content-Length (chunked) that is longer than the limit.
    werkzeug cuts such a stream at the limit without a word, so a body of 1.5 MB was a
    "not valid JSON" 400, and a valid one padded with spaces past the limit was taken."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if limit is not None and len(request.get_data(cache=True)) >= limit and request.environ["wsgi.input"].read(1):
        raise ApiError(413, "payload_too_large", f"request body too large; the limit is {limit} bytes")


def json_body() -> Any:
    """The parsed JSON body (any JSON value, ``null`` included: callers check its shape);
    415 when it is not declared JSON, 400 when it does not parse."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json")
    if request.content_length is None:
        _refuse_a_long_stream()
    try:
        body = request.get_json(silent=True)  # reading it enforces MAX_CONTENT_LENGTH (413)
    except RecursionError:  # a few thousand '[' overflow the parser's stack, which silent= does not catch
        raise bad_request("the body is not valid JSON: it is nested too deeply", code="malformed_json") from None
    if body is None and request.get_data().strip() != b"null":  # get_json gives None for both
        raise bad_request("the body is not valid JSON", code="malformed_json")
    return body


def bounded_list(value: Any, name: str, noun: str) -> list:
    """A non-empty JSON list of at most MAX_BATCH entries (events in a batch, items to rank)."""
    limit = current_app.config["MAX_BATCH"]
    if not isinstance(value, list) or not value:
        raise bad_request(f"{name} must be a non-empty list of {noun}")
    if len(value) > limit:
        raise bad_request(f"{name} holds {len(value)} entries; at most {limit} are allowed per request")
    return value


EVENT_FIELDS = ("customer_id", "item_id", "event_type", "quantity", "timestamp", "recommendation_id", "idempotency_key")


def parse_event(raw: Any, where: str) -> Event:
    """One event object -> :class:`Event`; ``where`` names it in messages (``events[3]``)."""
    if not isinstance(raw, dict):
        raise bad_request(f"{where} must be a JSON object")
    # A misspelt field must not be dropped: "evnt_type": "view" would store a purchase.
    unknown = [name for name in raw if name not in EVENT_FIELDS]
    if unknown:
        batch = '; a batch is {"events": [...]}' if unknown[0] == "event" else ""  # {"event": [...]} for {"events": [...]}
        raise bad_request(f"{where}.{str(unknown[0])[:64]} is not a field of an event; the fields are {', '.join(EVENT_FIELDS)}{batch}",
                          code="unknown_field")
    for field in ("customer_id", "item_id"):
        if field not in raw:
            raise bad_request(f"{where}.{field} is missing", code="missing_field")
    customer_id = checked_id(raw["customer_id"], f"{where}.customer_id")
    item_id = checked_id(raw["item_id"], f"{where}.item_id")
    event_type = raw.get("event_type", "purchase")
    accepted = accepted_event_types(current_app.config["EVENT_WEIGHTS"])
    if not isinstance(event_type, str) or event_type not in accepted:
        raise bad_request(f"{where}.event_type must be one of {', '.join(accepted)}")
    quantity = raw.get("quantity", 1)
    if not _finite_number(quantity) or not 0 < quantity <= 1e6:
        raise bad_request(f"{where}.quantity must be a positive number up to 1000000")
    # Absent means now; an explicit null is a malformed value, like a null quantity.
    timestamp = _timestamp(raw["timestamp"], f"{where}.timestamp") if "timestamp" in raw else int(time.time())
    # Any id is stored: one the server never gave counts as unattributed, never as an error.
    recommendation_id = raw.get("recommendation_id")
    if recommendation_id is not None:  # null: none, as when absent
        recommendation_id = checked_id(recommendation_id, f"{where}.recommendation_id", RECOMMENDATION_ID_LENGTH)
    # A client that retries after a timeout sends the same key, and the store keeps one event.
    idempotency_key = raw.get("idempotency_key")
    if idempotency_key is not None:
        idempotency_key = checked_id(idempotency_key, f"{where}.idempotency_key", IDEMPOTENCY_KEY_LENGTH)
    return Event(customer_id, item_id, event_type, float(quantity), timestamp, recommendation_id, idempotency_key)


# How far ahead of the server's clock an event's time may be: a client's clock that is off,
# or a local time sent without its offset (at most 14 hours). Anything later did not happen
# yet, and one such event would become "now" for training's recency weights, fading every
# real purchase to nothing.
FUTURE_ALLOWANCE_SECONDS = 86_400


def _finite_number(value: Any) -> bool:
    """A JSON number that is finite (not a boolean). JSON integers have no size limit: one
    of 400 digits overflows math.isfinite's conversion to float, which is no reason for a 500."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _timestamp(value: Any, field: str) -> int:
    """Epoch seconds from ISO 8601 text or a JSON number, from 1970 (the API's events happen
    now, not before) to a day after the server's clock."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = int(value) if _finite_number(value) and 0 <= value < MAX_ABS_EPOCH_SECONDS else None
    else:
        seconds = parse_iso_timestamp(value) if isinstance(value, str) else None
    if seconds is None or seconds < 0:
        hint = ""
        if isinstance(value, (int, float)) and not isinstance(value, bool) and _finite_number(value) and MAX_ABS_EPOCH_SECONDS <= value < 1000 * MAX_ABS_EPOCH_SECONDS:
            hint = f" ({value} looks like milliseconds, as JavaScript's Date.now() gives: send {int(value) // 1000})"
        raise bad_request(f"{field} must be a time from 1970 to now (a day ahead at most), as ISO 8601 text (2025-03-01T12:00:00Z) or epoch seconds{hint}")
    now = int(time.time())
    if seconds > now + FUTURE_ALLOWANCE_SECONDS:
        raise bad_request(f"{field} is {iso_time(seconds)}, in the future (the server's clock says {iso_time(now)}): "
                          "send the time the event happened, or leave it out for now")
    return seconds
