"""Who may see the dashboard and who may change the served model, in a browser.

A browser cannot be told to send ``Authorization: Bearer``, so reading works two ways:
- a script sends the header, exactly as for the JSON API (read token or API token);
- a person signs in once on ``/dashboard/login`` with the read token (or the API token),
  and gets a cookie that holds, signed, an HMAC check of the token: never the token
  itself. The signing key is derived from the tokens configured now, so every worker
  accepts the cookie without sharing any state, and changing a token signs everyone out.
  The cookie lasts 12 hours, is HttpOnly, SameSite=Strict and limited to /dashboard.

Changing the served model (promote, roll back) needs the API token typed into the
confirmation form each time (or sent as a bearer header): a stolen read cookie cannot do
it, nor can another site make a signed-in browser do it. Every POST must also come
from a page of this server (the browser's Sec-Fetch-Site or Origin header says so).
When no read token is set, pages are open, as the API's reads are.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Response, current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..auth import grants_read, grants_write, presented_bearer_token

COOKIE = "recommender_dashboard"
COOKIE_PATH = "/dashboard"
SIGNED_IN_SECONDS = 12 * 3600


def _signing_key(config: Mapping[str, Any]) -> bytes:
    tokens = f"{config['API_TOKEN']}\0{config['READ_TOKEN']}".encode("utf-8", "replace")
    return hmac.new(b"recommender dashboard sign-in", tokens, hashlib.sha256).digest()


def _token_check(config: Mapping[str, Any], token: str) -> str:
    return hmac.new(_signing_key(config), token.encode("utf-8", "replace"), hashlib.sha256).hexdigest()


def _serializer(config: Mapping[str, Any]) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_signing_key(config), salt="dashboard sign-in")


def sign_in_needed() -> bool:
    """True when pages need a token (a read token is configured)."""
    return bool(current_app.config["READ_TOKEN"])


def may_read() -> bool:
    """The request carries a read token, the API token, or a valid sign-in cookie (or reads are open)."""
    config = current_app.config
    if grants_read(config, presented_bearer_token()):
        return True
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return False
    try:
        check = _serializer(config).loads(cookie, max_age=SIGNED_IN_SECONDS)
    except BadSignature:  # also an expired cookie (SignatureExpired is a BadSignature)
        return False
    return isinstance(check, str) and any(
        token and hmac.compare_digest(check, _token_check(config, token)) for token in (config["READ_TOKEN"], config["API_TOKEN"])
    )


def signed_in() -> bool:
    """A sign-in cookie came with the request (the page then offers to sign out)."""
    return COOKIE in request.cookies


def sign_in(response: Response, token: str) -> bool:
    """Set the sign-in cookie on ``response`` when ``token`` grants reading; False otherwise."""
    config = current_app.config
    if not config["READ_TOKEN"] or not grants_read(config, token):
        return False
    response.set_cookie(
        COOKIE,
        _serializer(config).dumps(_token_check(config, token)),
        max_age=SIGNED_IN_SECONDS,
        path=COOKIE_PATH,
        secure=request.is_secure,
        httponly=True,
        samesite="Strict",
    )
    return True


def sign_out(response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, secure=request.is_secure, httponly=True, samesite="Strict")


def may_change_models(form_token: str) -> bool:
    """The API token was typed into the form (or sent as a bearer header), or none is configured."""
    config = current_app.config
    return grants_write(config, form_token) or (bool(config["API_TOKEN"]) and grants_write(config, presented_bearer_token()))


def from_this_site() -> bool:
    """A POST came from one of our own pages: browsers say where a request comes from in
    Sec-Fetch-Site (or at least Origin); a client that sends neither is not a browser
    acting for another site."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host
