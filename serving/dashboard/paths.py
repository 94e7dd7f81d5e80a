"""Ids in page paths: any id may be a customer's or an item's, slashes and dots included."""

from __future__ import annotations

from flask import url_for


def needs_query_form(identifier: str) -> bool:
    """True for an id that a browser or the router would rewrite inside a path ("..", "a//b",
    a trailing slash): such an id's page is shown at ``?id=`` instead."""
    parts = identifier.split("/")
    return any(part in ("", ".", "..") for part in parts) if len(parts) > 1 or identifier in (".", "..") else False


def customer_url(customer_id: str) -> str:
    """The link to a customer's page."""
    if needs_query_form(customer_id):
        return url_for("dashboard.find_customer", id=customer_id)
    return url_for("dashboard.customer", customer_id=customer_id)


def item_url(item_id: str) -> str:
    """The link to an item's page."""
    if needs_query_form(item_id):
        return url_for("dashboard.find_item", id=item_id)
    return url_for("dashboard.item", item_id=item_id)
