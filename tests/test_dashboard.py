"""The dashboard through Flask's test client: every page, every error page, signing in,
promoting and rolling back, the evaluation report, escaping, and that pages show what the
JSON API answers. The same pages in a real browser: tests/test_dashboard_browser.py."""

from __future__ import annotations

import re
from html import unescape

import pytest

from recommender.artifacts import CURRENT, current_version, promote
from tests.conftest import bought_by, train_model

READ, API = "read-token-7", "api-token-9"
HOSTILE = "<script>alert('x')</script>"


def page(client, url: str, status: int = 200, **kwargs) -> str:
    response = client.get(url, **kwargs)
    assert response.status_code == status, (url, response.status_code, response.get_data(as_text=True)[:2000])
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def recommended_ids(html: str) -> list[str]:
    """Item ids of the recommendation list, in order, read from the links of the page."""
    listing = re.search(r'<ol class="recommendations">(.*?)</ol>', html, re.S).group(1)
    return [unescape(m) for m in re.findall(r'<li>\s*<a href="/dashboard/items/([^"]+)">', listing)]


def api_ids(client, url: str) -> list[str]:
    return [item["item_id"] for item in client.get(url).get_json()["items"]]


def test_every_page_renders(client):
    client.get("/v1/customers/c0/recommendations")  # some traffic for the overview
    overview = page(client, "/dashboard/")
    assert "item-knn" in overview and "No experiments configured" in overview
    assert "GET /v1/customers/&lt;customer_id&gt;/recommendations" in overview.replace("<wbr>", "")
    assert client.get("/dashboard").headers["Location"].endswith("/dashboard/")
    searching = page(client, "/dashboard/customers")
    assert "c0" in searching and 'for="customer-id"' in searching
    assert "Trowel a0" in page(client, "/dashboard/customers/c0")
    assert "Customers who bought this also bought" in page(client, "/dashboard/items/a0")
    assert "current" in page(client, "/dashboard/models")
    assert "No experiments configured" in page(client, "/dashboard/experiments")
    css = client.get("/dashboard/static/dashboard.css")
    assert css.status_code == 200 and css.mimetype == "text/css"


def test_pages_are_safe_by_default(client):
    response = client.get("/dashboard/customers/c0")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy and "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff" and response.headers["Cache-Control"] == "no-store"
    assert "<script" not in response.get_data(as_text=True)


def test_search_goes_to_the_customer_and_item_pages(client):
    response = client.get("/dashboard/customers?id=c0&n=3")
    assert response.status_code == 303 and response.headers["Location"] == "/dashboard/customers/c0?n=3"
    assert client.get("/dashboard/customers?id=%20c0%20").headers["Location"] == "/dashboard/customers/c0"
    assert client.get("/dashboard/items?id=a1").headers["Location"] == "/dashboard/items/a1"
    # An id a path cannot carry is shown at ?id= (here: unknown, so the friendly 404).
    assert "Unknown customer" in page(client, "/dashboard/customers?id=a/../b", 404)


def test_customer_page_shows_history_reasons_and_the_api_answer(client):
    html = page(client, "/dashboard/customers/c0?n=4")
    assert all(f"Trowel {item}" in html for item in bought_by("c0"))
    assert recommended_ids(html) == api_ids(client, "/v1/customers/c0/recommendations?n=4")
    assert re.search(r'because you bought <a href="/dashboard/items/a\d">Trowel a\d</a>', html)
    assert "No stored events since the model was trained" in html


def test_customer_page_says_viewed_of_an_item_only_viewed(client):
    client.post("/v1/events", json={"customer_id": "c0", "item_id": "b0", "event_type": "view"})
    html = page(client, "/dashboard/customers/c0?n=10")
    # c0 bought garden items; the kitchen items now listed come from the view of b0.
    assert re.search(r'because you viewed <a href="/dashboard/items/b0">Whisk b0</a>', html)
    assert "bought <a href=\"/dashboard/items/b0\">" not in html


@pytest.mark.parametrize("query", ["?n=10&category=Kitchen", "?n=10&include_purchased=true", "?n=2&category=garden"])
def test_customer_page_filters_are_the_apis(client, query):
    assert recommended_ids(page(client, f"/dashboard/customers/c1{query}")) == api_ids(client, f"/v1/customers/c1/recommendations{query}")


def test_a_customer_page_shows_the_newest_events_of_a_long_history(client):
    from serving.dashboard.customers import PAGE_ROWS

    events = [{"customer_id": "c0", "item_id": f"new-{k:04d}", "event_type": "view"} for k in range(PAGE_ROWS + 5)]
    assert client.post("/v1/events", json={"events": events}).status_code == 202
    html = page(client, "/dashboard/customers/c0?n=2")
    assert f"{PAGE_ROWS + 5} events received since the model was trained (the latest {PAGE_ROWS} received here;" in html
    assert f"new-{PAGE_ROWS + 4:04d}" in html and "new-0004" not in html and "new-0005" in html


def test_new_events_show_and_change_the_recommendations(client):
    before = recommended_ids(page(client, "/dashboard/customers/c0?n=2"))
    assert client.post("/v1/events", json={"customer_id": "c0", "item_id": "a3"}).status_code == 202
    html = page(client, "/dashboard/customers/c0?n=2")
    assert "a3" in before and "a3" not in recommended_ids(html)
    assert recommended_ids(html) == api_ids(client, "/v1/customers/c0/recommendations?n=2")
    assert "1 event received since the model was trained" in html and "no longer listed" in html


def test_overview_shows_the_answers_scored_live_and_remembered(client):
    client.post("/v1/events", json={"customer_id": "c0", "item_id": "a3"})
    for _ in range(4):  # scored once, then remembered until c0's next event
        client.get("/v1/customers/c0/recommendations?n=2")
    html = page(client, "/dashboard/")
    # This model has no top lists: every answer is scored or remembered.
    assert "<dt>Not from the top lists</dt><dd>100.0% of them" in html
    assert "75.0% of those remembered from the customer's previous request" in html


def test_customer_known_only_from_events(client):
    client.post("/v1/events", json={"customer_id": "newcomer", "item_id": "b0"})
    html = page(client, "/dashboard/customers/newcomer")
    assert "not in the model's training data" in html and "Whisk b0" in html
    assert recommended_ids(html) == api_ids(client, "/v1/customers/newcomer/recommendations")


def test_item_page_shows_buyers_and_the_apis_similar_items(client):
    html = page(client, "/dashboard/items/a0")
    similar = client.get("/v1/items/a0/similar?n=10").get_json()["items"]
    shown = re.findall(r'<li><a href="/dashboard/items/([^"]+)">', html)
    assert shown == [item["item_id"] for item in similar]
    buyers = sorted(c for c in ("c0", "c1", "c2", "c3", "c4", "c5") if "a0" in bought_by(c))
    assert f"{len(buyers)} training customers" in html
    assert sorted(re.findall(r'href="/dashboard/customers/(c\d)"', html)) == buyers
    assert "no precomputed top lists" in html  # this test model has none


def test_an_erased_customer_shows_on_no_page(client):
    """After an erasure the model still holds the customer: the item page must not list them
    among its buyers, and their own page must not show, as what their new events pushed out,
    the list their erased history gave (a new user's trial saw both)."""
    before = recommended_ids(page(client, "/dashboard/customers/c0?n=2"))
    assert 'href="/dashboard/customers/c0"' in page(client, "/dashboard/items/a0")
    listed = re.findall(r'href="/dashboard/customers/([^"?]+)"', page(client, "/dashboard/customers"))
    assert "c0" in listed
    assert client.delete("/v1/customers/c0").status_code == 200
    # The search page's list of customers with the longest histories leaves them out too.
    assert re.findall(r'href="/dashboard/customers/([^"?]+)"', page(client, "/dashboard/customers")) == [c for c in listed if c != "c0"]
    assert client.post("/v1/events", json={"customer_id": "c0", "item_id": "b4"}).status_code == 202
    html = page(client, "/dashboard/customers/c0?n=2")
    dropped = re.findall(r'no longer listed: <a href="/dashboard/items/([^"]+)"', html)
    assert not set(dropped) & set(before), (dropped, before)
    assert recommended_ids(html) == api_ids(client, "/v1/customers/c0/recommendations?n=2")
    assert "the customer was erased after this model was trained" in html and "not in the training data" not in html
    item_page = page(client, "/dashboard/items/a0")
    assert 'href="/dashboard/customers/c0"' not in item_page
    assert 'href="/dashboard/customers/c4"' in item_page  # the other buyers stay


def test_friendly_error_pages(client, make_client):
    assert "Unknown customer" in page(client, "/dashboard/customers/nobody", 404)
    assert "Unknown item" in page(client, "/dashboard/items/nothing", 404)
    assert "no item has category" in page(client, "/dashboard/customers/c0?category=Toys", 400)
    assert "must be an integer" in page(client, "/dashboard/customers/c0?n=zero", 400)
    assert "control characters" in page(client, "/dashboard/customers/a%01b", 400)
    assert "There is no such dashboard page" in page(client, "/dashboard/no/such/page", 404)
    assert "no model is loaded yet" in page(make_client(MODEL_PATH="/nonexistent/model"), "/dashboard/", 503)


def test_names_and_ids_are_shown_as_text(client):
    """Ids and names are untrusted: an item posted with markup for a name appears as text."""
    assert client.post("/v1/events", json={"customer_id": "c0", "item_id": HOSTILE}).status_code == 202
    html = page(client, "/dashboard/customers/c0")
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html and "<script" not in html
    assert client.post("/v1/events", json={"customer_id": HOSTILE, "item_id": "a0"}).status_code == 202
    html = page(client, "/dashboard/customers/" + HOSTILE.replace("/", "%2F"))
    assert "<script" not in html and "&lt;script&gt;" in html
    html = page(client, "/dashboard/items/" + HOSTILE, 404)
    assert "<script" not in html and "&lt;script&gt;" in html


# -- signing in -----------------------------------------------------------------------------
@pytest.fixture
def guarded(make_client):
    return make_client(READ_TOKEN=READ, API_TOKEN=API)


def test_pages_need_the_read_token(guarded):
    response = guarded.get("/dashboard/customers/c0")
    assert response.status_code == 401 and "Sign in" in response.get_data(as_text=True)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert guarded.get("/dashboard/static/dashboard.css").status_code == 200  # the sign-in page is styled
    for token in (READ, API):  # scripts send the header, as to the API
        assert guarded.get("/dashboard/customers/c0", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_signing_in_sets_a_cookie_that_does_not_hold_the_token(guarded):
    wrong = guarded.post("/dashboard/login", data={"token": "guess", "next": "/dashboard/models"})
    assert wrong.status_code == 401 and "That token is not right" in wrong.get_data(as_text=True)
    assert "guess" not in wrong.get_data(as_text=True)
    response = guarded.post("/dashboard/login", data={"token": READ, "next": "/dashboard/models"})
    assert response.status_code == 303 and response.headers["Location"] == "/dashboard/models"
    cookie = response.headers["Set-Cookie"]
    assert READ not in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/dashboard" in cookie
    assert guarded.get("/dashboard/models").status_code == 200
    assert guarded.post("/dashboard/logout").status_code == 303
    assert guarded.get("/dashboard/models").status_code == 401


def test_a_forged_or_outdated_cookie_is_refused(guarded, make_client):
    guarded.set_cookie("recommender_dashboard", "forged.value.here", path="/dashboard")
    assert guarded.get("/dashboard/").status_code == 401
    guarded.post("/dashboard/login", data={"token": READ})
    assert guarded.get("/dashboard/").status_code == 200
    cookie = guarded.get_cookie("recommender_dashboard", path="/dashboard").value
    rotated = make_client(READ_TOKEN="a-new-read-token", API_TOKEN=API)  # the token changed: everyone signs in again
    rotated.set_cookie("recommender_dashboard", cookie, path="/dashboard")
    assert rotated.get("/dashboard/").status_code == 401


def test_sign_in_goes_back_only_to_a_dashboard_page(guarded):
    for target in ("https://elsewhere.example/", "//elsewhere.example/", "/v1/model"):
        response = guarded.post("/dashboard/login", data={"token": READ, "next": target})
        assert response.headers["Location"] == "/dashboard/"


def test_open_pages_without_a_read_token(client):
    assert "pages are open" in page(client, "/dashboard/login")


# -- promoting and rolling back ---------------------------------------------------------------
@pytest.fixture
def two_models(tmp_path, models_dir, make_client):
    """A models folder with the original model current and a second one published beside it."""
    second = train_model(tmp_path / "data-2", models_dir, make_current=False).name
    first = current_version(models_dir)
    client = make_client(MODEL_PATH=str(models_dir / CURRENT), API_TOKEN=API, MODEL_CHECK_SECONDS=3600)
    return client, models_dir, first, second


def test_models_page_lists_versions_and_marks_the_current_one(two_models):
    client, _, first, second = two_models
    html = page(client, "/dashboard/models")
    assert first.split("-")[0] in html and second.split("-")[0] in html
    assert html.count("<strong>current</strong>") == 1
    assert f'href="/dashboard/models/promote?version={second}"' in html


def test_promote_needs_confirmation_and_the_api_token(two_models):
    client, models_dir, first, second = two_models
    confirm = page(client, f"/dashboard/models/promote?version={second}")
    assert f"Promote <code>{second}</code>?" in confirm and 'name="token"' in confirm
    form = {"version": second, "expected_current": first}
    refused = client.post("/dashboard/models/promote", data={**form, "token": "wrong"})
    assert refused.status_code == 401 and "not the API token" in refused.get_data(as_text=True)
    assert current_version(models_dir) == first
    response = client.post("/dashboard/models/promote", data={**form, "token": API})
    assert response.status_code == 303 and current_version(models_dir) == second
    assert client.get("/v1/model").get_json()["version"] == second  # this worker swapped at once
    assert f"Promoted <code>{second}</code>" in page(client, response.headers["Location"])


def test_a_promotion_warns_that_experiments_on_the_current_model_will_pool_both(tmp_path, models_dir, make_client):
    """An operator promoted during an A/B test, and the variant's figures mixed two models unannounced."""
    import json

    second = train_model(tmp_path / "data-2", models_dir, make_current=False).name
    experiments = tmp_path / "experiments.json"
    experiments.write_text(json.dumps({"experiments": [{"name": "homepage", "variants": [
        {"name": "control", "model": "popular", "share": 0.5}, {"name": "default", "model": "current", "share": 0.5}]}]}))
    client = make_client(MODEL_PATH=str(models_dir / CURRENT), API_TOKEN=API, MODEL_CHECK_SECONDS=3600, EXPERIMENTS=str(experiments))
    confirm = page(client, f"/dashboard/models/promote?version={second}")
    assert "Running experiments follow the current model:" in confirm
    assert "homepage's variant <strong>control</strong>, homepage's variant <strong>default</strong>." in confirm
    assert "their figures pool answers of both models" in confirm
    plain = make_client(MODEL_PATH=str(models_dir / CURRENT), API_TOKEN=API, MODEL_CHECK_SECONDS=3600)
    assert "Running experiments" not in page(plain, f"/dashboard/models/promote?version={second}")


def test_a_promotion_whose_form_and_address_name_different_versions_is_refused(two_models):
    client, models_dir, first, second = two_models
    form = {"version": "../../etc", "expected_current": first, "token": API}
    response = client.post(f"/dashboard/models/promote?version={second}", data=form)
    assert response.status_code == 400 and "different versions" in response.get_data(as_text=True)
    assert current_version(models_dir) == first
    confirmed = client.post(f"/dashboard/models/promote?version={second}", data={**form, "version": second})
    assert confirmed.status_code == 303 and current_version(models_dir) == second  # the page's own form, as sent


def test_a_stale_confirmation_or_another_site_is_refused(two_models):
    client, models_dir, first, second = two_models
    stale = client.post("/dashboard/models/promote", data={"version": second, "expected_current": "something-else", "token": API})
    assert stale.status_code == 409 and current_version(models_dir) == first
    form = {"version": second, "expected_current": first, "token": API}
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://elsewhere.example"}):
        response = client.post("/dashboard/models/promote", data=form, headers=headers)
        assert response.status_code == 403 and current_version(models_dir) == first
    same_site = {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"}
    assert client.post("/dashboard/models/promote", data=form, headers=same_site).status_code == 303


def test_roll_back(two_models):
    client, models_dir, first, second = two_models
    promote(models_dir, second)
    html = page(client, "/dashboard/models")
    assert f"Roll back to <code>{first}</code>" in html
    assert f"Roll back to <code>{first}</code>?" in page(client, "/dashboard/models/rollback")
    response = client.post("/dashboard/models/rollback", data={"expected_current": second, "token": API})
    assert response.status_code == 303 and current_version(models_dir) == first
    assert client.get("/v1/model").get_json()["version"] == first


def test_unknown_version_and_fixed_model_path(two_models, make_client, trained_models):
    client, _, _, _ = two_models
    assert "There is no model" in page(client, "/dashboard/models/promote?version=../../etc", 404)
    fixed = make_client(MODEL_PATH=str(trained_models / current_version(trained_models)))
    assert "promotion is not offered here" in page(fixed, "/dashboard/models")


def test_evaluation_report_is_served_under_a_sandbox(tmp_path, models_dir, make_client):
    version = current_version(models_dir)
    (models_dir / version / "report.html").write_text("<html><body><h1>Report</h1></body></html>")
    _add_document(models_dir / version, "report.html")
    client = make_client(MODEL_PATH=str(models_dir / CURRENT))
    response = client.get(f"/dashboard/models/{version}/report")
    assert response.status_code == 200 and b"<h1>Report</h1>" in response.data
    assert "sandbox" in response.headers["Content-Security-Policy"] and response.mimetype == "text/html"
    assert f"/dashboard/models/{version}/report" in page(client, "/dashboard/models")
    assert "/report" in page(client, "/dashboard/")
    (models_dir / version / "report.html").write_text("<script>changed</script>")
    assert "checksum mismatch" in page(client, f"/dashboard/models/{version}/report", 409)
    assert "no evaluation report" in page(client, "/dashboard/models/nothing/report", 404)


def test_the_automatic_choices_page_is_linked_and_served_like_the_report(models_dir, make_client):
    # train writes choice.html (every candidate's figures, why the winner won); the dashboard never linked it.
    version = current_version(models_dir)
    client = make_client(MODEL_PATH=str(models_dir / CURRENT))
    assert f"/dashboard/models/{version}/choice" not in page(client, "/dashboard/models")
    assert "it was trained with --algorithm given" in page(client, f"/dashboard/models/{version}/choice", 404)
    (models_dir / version / "choice.html").write_text("<html><body><h1>Choice</h1></body></html>")
    _add_document(models_dir / version, "choice.html")
    client = make_client(MODEL_PATH=str(models_dir / CURRENT))
    response = client.get(f"/dashboard/models/{version}/choice")
    assert response.status_code == 200 and b"<h1>Choice</h1>" in response.data and "sandbox" in response.headers["Content-Security-Policy"]
    assert f"/dashboard/models/{version}/choice" in page(client, "/dashboard/models")
    assert f"/dashboard/models/{version}/choice" in page(client, "/dashboard/") and "How this model was chosen" in page(client, "/dashboard/")
    assert client.get(f"/dashboard/models/{version}/manifest.json").status_code == 404  # only the two documents


def test_evaluation_report_is_served_when_the_model_path_is_relative(models_dir, make_client, monkeypatch):
    """As every Makefile target gives it (MODEL=models/current): relative to the working
    folder, not to the package's (Flask's send_file reads a relative path from there)."""
    version = current_version(models_dir)
    (models_dir / version / "report.html").write_text("<html><body><h1>Report</h1></body></html>")
    _add_document(models_dir / version, "report.html")
    monkeypatch.chdir(models_dir.parent)
    client = make_client(MODEL_PATH=f"{models_dir.name}/{CURRENT}")
    response = client.get(f"/dashboard/models/{version}/report")
    assert response.status_code == 200 and b"<h1>Report</h1>" in response.data


def _add_document(folder, name):
    import hashlib
    import json

    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.setdefault("documents", {})[name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_dashboard_adds_no_work_to_api_requests(app):
    """The dashboard's hooks are the blueprint's: none runs for an API request."""
    assert all(name == "dashboard" for name in app.before_request_funcs if name is not None)
    # The app's own: the metrics timer, the path's UTF-8 check and the query's parameter names.
    assert len(app.before_request_funcs.get(None, [])) == 3
    assert len(app.after_request_funcs.get(None, [])) == 1


def test_templates_and_stylesheet_ship_with_the_package():
    """Every file the pages need is matched by setup.cfg's package_data (and MANIFEST.in), so
    an installed package serves the same pages as a checkout."""
    import configparser
    from fnmatch import fnmatch
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    config = configparser.ConfigParser()
    config.read(root / "setup.cfg")
    patterns = [line.strip() for line in config["options.package_data"]["serving"].splitlines() if line.strip()]
    needed = [p.relative_to(root / "serving").as_posix() for folder in ("templates", "static") for p in (root / "serving" / folder).rglob("*") if p.is_file()]
    assert needed and all(any(fnmatch(name, pattern) for pattern in patterns) for name in needed), needed
    assert "recursive-include serving/templates" in (root / "MANIFEST.in").read_text()


def test_overview_gives_the_whole_trainings_seconds_beside_its_final_fits(models_dir, make_client):
    # A warm-started refit alone read "fit in 0.03 s" for a run of a minute.
    import json

    manifest_path = models_dir / current_version(models_dir) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["pipeline_seconds"], manifest["training_seconds"] = 61.234, 0.031
    manifest_path.write_text(json.dumps(manifest))
    client = make_client(MODEL_PATH=str(models_dir / CURRENT))
    assert "(training took 61.2 s, its final fit 0.03 s)" in page(client, "/dashboard/")
    assert client.get("/v1/model").get_json()["pipeline_seconds"] == 61.234


def test_overview_shows_the_metrics_at_the_largest_k(models_dir, make_client):
    import json

    manifest_path = models_dir / current_version(models_dir) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["metrics"] = {"customers": 12.0, "recall@10": 0.25, "recall@20": 0.5, "ndcg@20": 0.375}
    manifest_path.write_text(json.dumps(manifest))
    html = page(make_client(MODEL_PATH=str(models_dir / CURRENT)), "/dashboard/")
    assert re.search(r"recall@20</th><td class=\"num\">0.5000", html) and "ndcg@20" in html and "recall@10" not in html
    assert re.search(r"customers evaluated</th><td class=\"num\">12<", html)


def test_training_items_only_viewed_are_marked_on_the_page_and_in_history(tmp_path, make_client):
    from recommender.events import Event, EventStore
    from tests.conftest import write_two_group_store
    from training.pipeline import train

    store = EventStore(tmp_path / "trained-events.sqlite3")
    store.add([Event("browser", "b0", "view"), Event("browser", "b1")])
    store.close()
    purchases, catalog = write_two_group_store(tmp_path / "data")
    model = train(purchases, catalog_path=catalog, algorithm="item-knn", models_dir=tmp_path / "viewing-models",
                  events_path=tmp_path / "trained-events.sqlite3", top_lists=0).model
    client = make_client(MODEL_PATH=str(tmp_path / "viewing-models" / model.version))
    html = page(client, "/dashboard/customers/browser")
    assert '>Whisk b0</a> <span class="muted">viewed, not bought</span>' in html
    assert '>Whisk b1</a> <span class="muted">viewed' not in html
    marked = {p["item_id"]: p["viewed_only"] for p in client.get("/v1/customers/browser/history").get_json()["purchases"]}
    assert marked == {"b0": True, "b1": False}


def test_the_weight_column_says_how_this_model_weighed_history(tmp_path, make_client, client):
    from recommender.weights import HistoryWeighting
    from tests.conftest import write_two_group_store
    from training.pipeline import train

    assert "history weighting" not in page(client, "/dashboard/customers/c0")  # plain sums: nothing more to say
    purchases, catalog = write_two_group_store(tmp_path / "data")
    model = train(purchases, catalog_path=catalog, algorithm="item-knn", models_dir=tmp_path / "log-models",
                  weighting=HistoryWeighting(None, "log"), top_lists=0).model
    html = page(make_client(MODEL_PATH=str(tmp_path / "log-models" / model.version)), "/dashboard/customers/c0")
    assert "then this model's history weighting (no recency decay, repeats log)" in html


def test_scores_read_as_a_person_reads_them():
    # A popular item's score (its buyers) read 8.405e+04 on the customer page (an operator's trial).
    from serving.dashboard.formatting import score

    assert (score(84048.0), score(0.211739), score(12.5), score(None)) == ("84,048", "0.2117", "12.5", "–")
