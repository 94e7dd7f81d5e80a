"""Ids are data, never code or paths: hostile ids round-trip through events and history unchanged.

Every SQL statement in recommender/events/ is parameterised, and no id is ever
joined into a file path (models are found by the models/current link, events by
the configured database). These ids would break either if it were not so.
"""

from __future__ import annotations

import sqlite3
from urllib.parse import quote

import pytest

from recommender.events import Event, EventStore

HOSTILE_IDS = [
    "'; DROP TABLE events;--",
    "\" OR 1=1 --",
    "c0' OR '1'='1",
    "../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "/etc/passwd",
    "%2e%2e%2fetc",
    "${jndi:ldap://x}",
    "<script>alert(1)</script>",
    "名前 ünïcødé 🙂",
    "x" * 256,
]


@pytest.mark.parametrize("hostile", HOSTILE_IDS)
def test_hostile_ids_round_trip_through_the_event_store(tmp_path, hostile):
    store = EventStore(tmp_path / "events.sqlite3")
    store.add([Event(hostile, hostile, "purchase", 1.0, 1_700_000_000), Event("c0", "a0", "purchase", 1.0, 1_700_000_000)])
    assert store.for_customer(hostile) == [Event(hostile, hostile, "purchase", 1.0, 1_700_000_000)]
    assert store.count() == 2
    tables = sqlite3.connect(tmp_path / "events.sqlite3").execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
    assert ("events",) in tables
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("events.sqlite3"))


@pytest.mark.parametrize("hostile", [i for i in HOSTILE_IDS if "/" not in i])
def test_hostile_ids_round_trip_through_the_api(client, hostile):
    response = client.post("/v1/events", json={"customer_id": hostile, "item_id": hostile, "timestamp": 1_700_000_000})
    assert response.status_code == 202, response.get_json()
    history = client.get(f"/v1/customers/{quote(hostile, safe='')}/history").get_json()
    assert history["customer_id"] == hostile
    assert [(e["customer_id"], e["item_id"]) for e in history["events"]] == [(hostile, hostile)]
    recommended = client.get(f"/v1/customers/{quote(hostile, safe='')}/recommendations?n=3")
    assert recommended.status_code == 200 and recommended.get_json()["customer_id"] == hostile
    assert client.get("/v1/customers/c0/history").get_json()["events"] == []  # nobody else's history changed


@pytest.mark.parametrize("hostile", [i for i in HOSTILE_IDS if "/" in i])
def test_ids_with_slashes_reach_no_file(client, hostile):
    # Percent-encoded, a slash is part of the id: that customer's answer, never a file's, and
    # never a redirect to another customer (werkzeug merges a double slash by default).
    encoded = quote(hostile, safe="")
    response = client.get(f"/v1/customers/{encoded}/history")
    body = response.get_json()
    assert response.status_code == 200 and (body["customer_id"], body["purchases"], body["events"]) == (hostile, [], []), body
    assert client.get(f"/v1/customers/{encoded}/recommendations").get_json()["customer_id"] == hostile
    # In a JSON body a slash is just a character: stored and read back like any other.
    assert client.post("/v1/events", json={"customer_id": "c-slash", "item_id": hostile}).status_code == 202
    events = client.get("/v1/customers/c-slash/history").get_json()["events"]
    assert [e["item_id"] for e in events] == [hostile]
