"""The application factory: settings, the served model, the event store, blueprints."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from flask import Flask, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.routing import PathConverter

from recommender.events import AnswerIds, AnswerLog, EventStore, backend_of, open_event_store
from recommender.experiments import ExperimentConfigError
from recommender.files import cannot_write_in, first_existing_folder
from recommender.parallel import blas_threads

from .admin import admin
from .config import ConfigError, load_config
from .customers import customers
from .dashboard import dashboard
from .erasure_list import KnownErasures
from .errors import bad_request, register_error_handlers
from .events import events
from .experiment_holder import ExperimentHolder, FiguresCache, read_experiments
from .experiments import experiments as experiments_blueprint
from .hot_routes import HotRoutes
from .items import items
from .lookups import current_figures
from .metrics import ServingMetrics
from .model_holder import ModelHolder
from .openapi import openapi_document, openapi_path, query_parameters
from .operations import operations
from .prepared import PreparedAnswers
from .state import EXTENSION, ServingState
from .validation import path_is_utf8

# Said once per worker at start: with no token the write endpoints are open (fine on a laptop,
# not behind a storefront), and nothing else would tell an operator.
OPEN_WRITES_WARNING = (
    "API_TOKEN is not set: POST /v1/events, DELETE /v1/customers/<id>, /v1/admin/* and the dashboard's "
    "promotions accept any caller; set RECOMMENDER_API_TOKEN in production"
)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask app. ``config`` overrides defaults, RECOMMENDER_CONFIG and RECOMMENDER_* env.

    The model is loaded here, memory-mapped; when it cannot be loaded the app still
    starts, ``/ready`` answers 503 and workers keep looking for a model to appear.
    """
    app = Flask(__name__, static_folder=None)
    app.json = OrjsonProvider(app)
    app.config.update(check_config(config))
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_BODY_BYTES"]
    if not app.config["API_TOKEN"]:
        app.logger.warning(OPEN_WRITES_WARNING)

    metrics = ServingMetrics()
    metrics.init_app(app)
    metrics.blas_threads.set(blas_threads())
    models = ModelHolder(
        app.config["MODEL_PATH"],
        check_seconds=app.config["MODEL_CHECK_SECONDS"],
        on_swap=metrics.model_swapped,
        on_failure=lambda message: metrics.model_reloads.labels("failed").inc(),
    )
    store = open_event_store(_event_store_location(app.config))
    answer_log = AnswerLog(
        _logging_answers(store, app.config["ANSWER_LOG_DAYS"]),
        flush_seconds=app.config["ANSWER_LOG_FLUSH_SECONDS"],
        on_dropped=metrics.answers_not_logged.inc,
    )
    try:  # read again: the file may have changed since check_config
        experiments = ExperimentHolder(app.config["EXPERIMENTS"], _models_dir(app.config), check_seconds=app.config["MODEL_CHECK_SECONDS"])
    except ExperimentConfigError as error:
        raise _experiments_error(error) from None
    prepared = PreparedAnswers(int(app.config["PREPARED_ANSWERS_MB"] * 1e6), app.json.encode, metrics.prepared_answers_encoded.inc)
    erasures = KnownErasures(lambda after_id: store.erasures(after_id=after_id))
    state = ServingState(models, store, metrics, experiments, answer_log, AnswerIds(), FiguresCache(app.config["EXPERIMENT_FIGURES_SECONDS"]), prepared,
                         erasures)
    app.extensions[EXTENSION] = state
    metrics.watch_experiments(lambda: current_figures(state, app.config))
    models.current()

    register_error_handlers(app)

    @app.before_request
    def _refuse_paths_that_are_not_text():
        if not path_is_utf8(request.environ):
            raise bad_request("the request's path is not valid UTF-8 (percent-escapes must spell UTF-8 text)")

    documented_parameters = query_parameters(openapi_document(app.config))

    @app.before_request
    def _refuse_parameters_the_api_does_not_take():
        # A misspelt parameter must not be dropped: "?N=3" answered ten items, as if it were right.
        # The API's own routes only (/v1/...): /health ignores any query, and the dashboard is for browsers.
        if request.url_rule is None or not request.args or not request.path.startswith("/v1/") or request.method == "OPTIONS":
            return
        method = "GET" if request.method == "HEAD" else request.method  # HEAD is GET without the body
        accepted = documented_parameters.get((openapi_path(request.url_rule.rule), method), {})
        unknown = next((name for name in request.args if name not in accepted), None)
        if unknown is not None:
            takes = f"it takes {', '.join(sorted(accepted))}" if accepted else "it takes none"
            raise bad_request(f"{unknown[:64]!r} is not a query parameter of {method} {openapi_path(request.url_rule.rule)}; {takes}",
                              code="unknown_parameter")
        # "?n=2&n=5" was answered with 2 items: which one the client meant is not ours to guess.
        twice = next((name for name in request.args if not accepted[name] and len(request.args.getlist(name)) > 1), None)
        if twice is not None:
            raise bad_request(f"{twice} is given {len(request.args.getlist(twice))} times; give it once")

    headers = _headers_on_every_reply(app)
    # Ids may hold "/" (percent-encoded in a path): "//" is then part of an id, and merging it
    # (werkzeug's default, with a redirect) would answer another customer.
    app.url_map.merge_slashes = False
    app.url_map.converters["id"] = AnyIdConverter
    app.register_blueprint(customers, url_prefix="/v1")
    app.register_blueprint(items, url_prefix="/v1")
    app.register_blueprint(events, url_prefix="/v1")
    app.register_blueprint(experiments_blueprint, url_prefix="/v1")
    app.register_blueprint(admin, url_prefix="/v1/admin")
    app.register_blueprint(operations)
    app.register_blueprint(dashboard, url_prefix="/dashboard")
    app.wsgi_app = HotRoutes(app, app.wsgi_app, headers)
    return app


class AnyIdConverter(PathConverter):
    """A customer or item id in a path: any text, "/" included, even as its first character
    (werkzeug's path converter refuses that) but not as its last; the server has decoded the
    client's %2F."""

    # "." would stop at a newline: a control character must reach the id check (400). Not ending
    # in "/": "DELETE /v1/customers/c0/" stays a 404 rather than erasing a customer named "c0/".
    regex = r"[\s\S]*?[^/]"
    part_isolating = False  # werkzeug would infer True from a regex without "/": matched a segment at a time


def check_config(config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The settings ``create_app`` runs with, after every start-up check that needs neither a
    model nor a connection: the settings, the RECOMMENDER_CONFIG file, the kind of event store
    location and the experiments file. Raises ConfigError naming the setting, file or field.

    The production launcher runs it once before any worker starts (``python -m
    serving.check_config``): a bad setting then stops the server in one sentence, instead of
    failing every worker at start, each with a traceback.
    """
    settings = load_config(config)
    _event_store_location(settings)
    if settings["EXPERIMENTS"]:
        try:
            read_experiments(Path(settings["EXPERIMENTS"]), _models_dir(settings))
        except ExperimentConfigError as error:
            raise _experiments_error(error) from None
    return settings


def _event_store_location(settings: Mapping[str, Any]) -> str:
    """Where the event store is; a location of no known kind stops the start, like any bad setting."""
    location = settings["EVENTS_URL"] or settings["EVENTS_DB"]
    try:
        kind, where = backend_of(location)
    except ValueError as error:
        raise ConfigError(f"EVENTS_URL: {error}") from None
    if kind == "sqlite":
        problem = _sqlite_location_problem(Path(where))
        if problem:
            raise ConfigError(f"{'EVENTS_URL' if settings['EVENTS_URL'] else 'EVENTS_DB'}: {problem}")
    return location


def _sqlite_location_problem(path: Path) -> str | None:
    """Why a SQLite event store cannot be at ``path`` (it is created on first use, folders
    included), or None: checked at start, so that it is not every request's 500 or 503."""
    if path.is_dir():
        return f"{path} is a folder, not a database file"
    folder = first_existing_folder(path.parent)
    reason = cannot_write_in(folder)
    return f"{path} cannot be created: {folder} is not a folder this server may write in ({reason})" if reason else None


def _models_dir(settings: Mapping[str, Any]) -> Path:
    """Where the experiments' model versions are published: beside the served model."""
    return Path(settings["MODEL_PATH"]).parent


def _experiments_error(error: ExperimentConfigError) -> ConfigError:
    """A bad experiments file stops the start, like any bad setting."""
    return ConfigError(f"EXPERIMENTS: {error}")


def _logging_answers(store: EventStore, keep_days: float):
    """The answer log's writer: the store's ``add_answers``, and once an hour the answers
    older than ``keep_days`` deleted (0: kept for ever)."""
    next_prune = [0.0]

    def write(records) -> int:
        written = store.add_answers(records)
        now = time.time()
        if keep_days and now >= next_prune[0]:
            next_prune[0] = now + 3600
            store.prune_answers(int(now - keep_days * 86400))
        return written

    return write


def _headers_on_every_reply(app: Flask) -> list[tuple[str, str]]:
    """The headers every reply carries, added to Flask's replies here and returned for the
    hot routes' (``X-Served-By``: the worker's pid, when SERVED_BY_HEADER is on)."""
    if not app.config["SERVED_BY_HEADER"]:
        return []
    headers = [("X-Served-By", str(os.getpid()))]  # preload is off, so each worker builds its own app: this is its pid

    @app.after_request
    def _add_headers(response):
        for name, value in headers:
            response.headers[name] = value
        return response

    return headers


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
        return self.encode(obj).decode()

    def response(self, *args, **kwargs):
        return self._app.response_class(self.body(self._prepare_response_obj(args, kwargs)), mimetype=self.mimetype)

    def body(self, obj) -> bytes:
        """A reply's body: ``obj`` as JSON, then a line feed."""
        return self.encode(obj) + b"\n"

    def encode(self, obj) -> bytes:
        """``obj`` as JSON bytes, as replies carry it."""
        try:
            return orjson.dumps(obj, option=self._OPTIONS)
        except TypeError:
            return super().dumps(obj).encode()

