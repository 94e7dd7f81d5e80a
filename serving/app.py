"""The application factory: settings, the served model, the event store, blueprints."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import orjson
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from recommender.events import EventStore

from .admin import admin
from .config import load_config
from .customers import customers
from .dashboard import dashboard
from .errors import register_error_handlers
from .events import events
from .items import items
from .metrics import ServingMetrics
from .model_holder import ModelHolder
from .operations import operations
from .state import EXTENSION, ServingState


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask app. ``config`` overrides defaults, RECOMMENDER_CONFIG and RECOMMENDER_* env.

    The model is loaded here, memory-mapped; when it cannot be loaded the app still
    starts, ``/ready`` answers 503 and workers keep looking for a model to appear.
    """
    app = Flask(__name__, static_folder=None)
    app.json = OrjsonProvider(app)
    app.config.update(load_config(config))
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_BODY_BYTES"]

    metrics = ServingMetrics()
    metrics.init_app(app)
    models = ModelHolder(
        app.config["MODEL_PATH"],
        check_seconds=app.config["MODEL_CHECK_SECONDS"],
        on_swap=metrics.model_swapped,
        on_failure=lambda message: metrics.model_reloads.labels("failed").inc(),
    )
    app.extensions[EXTENSION] = ServingState(models, EventStore(app.config["EVENTS_DB"]), metrics)
    models.current()

    register_error_handlers(app)
    if app.config["SERVED_BY_HEADER"]:
        _add_served_by_header(app)
    app.register_blueprint(customers, url_prefix="/v1")
    app.register_blueprint(items, url_prefix="/v1")
    app.register_blueprint(events, url_prefix="/v1")
    app.register_blueprint(admin, url_prefix="/v1/admin")
    app.register_blueprint(operations)
    app.register_blueprint(dashboard, url_prefix="/dashboard")
    return app


def _add_served_by_header(app: Flask) -> None:
    pid = str(os.getpid())  # preload is off, so each worker builds its own app: this is its pid

    @app.after_request
    def _served_by(response):
        response.headers["X-Served-By"] = pid
        return response


class OrjsonProvider(DefaultJSONProvider):
    """Replies encoded by orjson: encoding was the largest single cost of a cached
    recommendation answer with the standard library (about 16 of 60 µs), orjson takes ~2.
    Field order is kept as documented (no key sorting); anything orjson cannot encode
    goes through Flask's default encoder. Request bodies are still parsed by ``json``,
    whose error messages the 400 replies quote."""

    sort_keys = False
    _OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS

    def dumps(self, obj, **kwargs) -> str:
        if kwargs:
            return super().dumps(obj, **kwargs)
        return self._encode(obj).decode()

    def response(self, *args, **kwargs):
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(self._encode(obj) + b"\n", mimetype=self.mimetype)

    def _encode(self, obj) -> bytes:
        try:
            return orjson.dumps(obj, option=self._OPTIONS)
        except TypeError:
            return super().dumps(obj).encode()

