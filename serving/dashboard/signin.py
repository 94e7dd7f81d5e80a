"""Signing in and out of the dashboard in a browser (see :mod:`.access` for the design)."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from . import access
from .blueprint import dashboard


def _safe_next(target: str) -> str:
    """Where to go after signing in: only a dashboard page of this server, never another site."""
    if target.startswith("/dashboard") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("dashboard.overview")


@dashboard.route("/login", methods=["GET", "POST"])
def login():
    next_url = _safe_next(request.values.get("next", ""))
    if request.method == "GET":
        return render_template("dashboard/login.html", next_url=next_url, failed=False, open_pages=not access.sign_in_needed())
    response = redirect(next_url, 303)
    if access.sign_in(response, request.form.get("token", "")):
        return response
    return render_template("dashboard/login.html", next_url=next_url, failed=True, open_pages=not access.sign_in_needed()), 401


@dashboard.post("/logout")
def logout():
    response = redirect(url_for("dashboard.login"), 303)
    access.sign_out(response)
    return response
