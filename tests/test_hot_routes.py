"""The hot routes (serving/hot_routes.py): the same replies as Flask's for the plain health and
recommendations requests, and every other request left to Flask."""

import json

import pytest
from flask import request
from werkzeug.test import Client

from serving import create_app

RECOMMENDATIONS = "/v1/customers/c0/recommendations"


@pytest.fixture
def served(app_config):
    """An app whose Flask side notes every request it handles, and a client for each side."""
    app = create_app({**app_config, "SERVED_BY_HEADER": True, "READ_TOKEN": "reader", "API_TOKEN": "admin"})
    app.config["TESTING"] = True
    flask_handled = []
    app.before_request(lambda: flask_handled.append(request.full_path.rstrip("?")))
    return app, Client(app), Client(app.wsgi_app.flask_wsgi), flask_handled


def reply(client, path, token="reader"):
    response = client.get(path, headers={"Authorization": f"Bearer {token}"} if token else {})
    return response.status_code, dict(response.headers), response.get_data()


def test_plain_requests_get_flasks_reply_without_flask(served):
    app, hot, flask_only, flask_handled = served
    for path in ("/health", "/health?customer=c7", RECOMMENDATIONS, RECOMMENDATIONS + "?n=3", "/v1/customers/stranger/recommendations", "/v1/customers/caf%C3%A9/recommendations"):
        fast = reply(hot, path)
        assert not flask_handled, path
        slow = reply(flask_only, path)
        assert flask_handled == [path.replace("%C3%A9", "é")]
        flask_handled.clear()
        assert fast[0] == slow[0] == 200
        assert fast[1] == slow[1] and fast[1]["X-Served-By"].isdigit()  # same headers, Content-Length included
        fast_body, slow_body = json.loads(fast[2]), json.loads(slow[2])
        if "recommendation_id" in fast_body:
            assert fast_body.pop("recommendation_id") != slow_body.pop("recommendation_id")  # each answer has its own
        assert fast_body == slow_body and fast[2].endswith(b"\n")
    assert len(json.loads(reply(hot, RECOMMENDATIONS + "?n=3")[2])["items"]) == 3


def test_every_other_request_is_flasks(served):
    app, hot, _, flask_handled = served
    cases = {
        RECOMMENDATIONS + "?n=0": 400,  # out of range: Flask's error reply names the limits
        RECOMMENDATIONS + "?n=2&exclude=a3": 200,  # another query
        "/v1/customers/" + "x" * 300 + "/recommendations": 400,  # an id the rules refuse
    }
    for path, status in cases.items():
        assert reply(hot, path)[0] == status, path
        assert len(flask_handled) == 1, path
        flask_handled.clear()
    assert reply(hot, RECOMMENDATIONS, token="wrong")[0] == 401 and flask_handled == [RECOMMENDATIONS]
    flask_handled.clear()
    assert reply(hot, RECOMMENDATIONS, token="admin")[0] == 200 and not flask_handled  # the API token reads too
    assert hot.post("/health").status_code == 405 and len(flask_handled) == 1
    excluded = json.loads(reply(hot, RECOMMENDATIONS + "?n=2&exclude=a3")[2])
    assert "a3" not in [item["item_id"] for item in excluded["items"]]


def test_hot_replies_are_counted_like_flasks(served):
    app, hot, flask_only, _ = served
    for client in (hot, flask_only, hot):
        reply(client, RECOMMENDATIONS)
        reply(client, "/health")
    text = reply(hot, "/metrics")[2].decode()
    assert 'recommender_http_requests_total{endpoint="/v1/customers/<customer_id>/recommendations",method="GET",status="200"} 3.0' in text
    assert 'recommender_http_requests_total{endpoint="/health",method="GET",status="200"} 3.0' in text
    assert 'recommender_http_request_duration_seconds_count{endpoint="/health",method="GET",status="200"} 3.0' in text
    assert 'recommender_recommendations_total{source="personalised"} 3.0' in text


def test_without_a_model_flask_says_so(tmp_path, app_config):
    app = create_app({**app_config, "MODEL_PATH": str(tmp_path / "no-model-here")})
    response = app.test_client().get(RECOMMENDATIONS)
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "model_unavailable"


def test_the_hot_routes_must_still_be_flasks_routes():
    from flask import Flask

    from serving.hot_routes import HotRoutes

    bare = Flask(__name__)
    with pytest.raises(RuntimeError, match="hot route /health is not Flask's GET route to operations.health"):
        HotRoutes(bare, bare.wsgi_app, [])
