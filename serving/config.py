"""Settings for the serving app: defaults, then a JSON file, then environment, then a mapping.

Each later source overrides the earlier ones:

1. :data:`DEFAULTS` below;
2. the JSON object in the file named by ``RECOMMENDER_CONFIG`` (keys as below,
   with or without the ``RECOMMENDER_`` prefix, any case);
3. ``RECOMMENDER_<KEY>`` environment variables (``RECOMMENDER_MAX_N=50``);
4. the mapping given to :func:`serving.create_app` (tests, ``python -m serving``).

Values are converted to the type of their default, so a typo fails at start-up
with a sentence naming the setting, never later inside a request.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recommender.ids import MAX_ID_LENGTH
from recommender.weights import DEFAULT_EVENT_WEIGHTS, check_event_weights

PREFIX = "RECOMMENDER_"
CONFIG_FILE_VARIABLE = "RECOMMENDER_CONFIG"

DEFAULTS: dict[str, Any] = {
    "MODEL_PATH": "models/current",  # a model folder, or the models/current symlink
    "EVENTS_DB": "events.sqlite3",  # SQLite event store, shared by every worker of one host
    # The event store as a URL (sqlite:///path or postgresql://user@host:port/database);
    # when set it wins over EVENTS_DB. PostgreSQL lets several API hosts share one store.
    "EVENTS_URL": "",
    "API_TOKEN": "",  # bearer token for POST /v1/events and admin; "" = open
    "READ_TOKEN": "",  # bearer token for the reading endpoints; "" = open
    "DEFAULT_N": 10,
    "MAX_N": 100,
    "MAX_BATCH": 1000,  # events per POST, items per rank request, ids per include/exclude
    "MAX_BODY_BYTES": 1_000_000,
    "MAX_ID_LENGTH": MAX_ID_LENGTH,  # the training loader's limit too
    "MODEL_CHECK_SECONDS": 5.0,  # how often a worker looks at where models/current points
    "EVENT_WEIGHTS": dict(DEFAULT_EVENT_WEIGHTS),
    "WITH_REASONS": True,  # "because you bought ..." explanations in recommendations
    "SERVED_BY_HEADER": False,  # add X-Served-By: <worker pid> (tests and load-balancing checks)
    "EXPERIMENTS": "",  # JSON file of experiments between models ("" = none); reloaded like models
    "ATTRIBUTION_HOURS": 24.0,  # an event is attributed to an answer shown at most this long before it
    "ANSWER_LOG_FLUSH_SECONDS": 0.2,  # answers are logged in batches this often (a crash loses at most this much)
    "ANSWER_LOG_DAYS": 90.0,  # logged answers older than this are deleted (0 = kept for ever)
    "EXPERIMENT_FIGURES_SECONDS": 10.0,  # a worker recomputes experiment figures at most this often
    "PREPARED_ANSWERS_MB": 64.0,  # per worker: plain top-list answers kept encoded (serving/prepared.py); 0 = off
}


class ConfigError(ValueError):
    """A setting has a value of the wrong type or outside its range."""


def load_config(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The merged settings; ``environ`` defaults to ``os.environ`` (read now, not at import)."""
    environ = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    settings["EVENT_WEIGHTS"] = dict(DEFAULTS["EVENT_WEIGHTS"])
    config_file = environ.get(CONFIG_FILE_VARIABLE)
    if config_file:
        settings.update(_read_config_file(Path(config_file)))
    for key in DEFAULTS:
        if PREFIX + key in environ:
            settings[key] = _convert(key, environ[PREFIX + key], source=f"environment variable {PREFIX + key}")
    for key, value in (overrides or {}).items():
        settings[key.upper()] = _convert(key.upper(), value, source="create_app config") if key.upper() in DEFAULTS else value
    _check_ranges(settings)
    return settings


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{CONFIG_FILE_VARIABLE} names {path}, which does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: must hold a JSON object of settings")
    settings = {}
    for raw_key, value in content.items():
        key = raw_key.upper().removeprefix(PREFIX)
        if key not in DEFAULTS:
            raise ConfigError(f"{path}: unknown setting {raw_key!r}; known: {', '.join(sorted(DEFAULTS))}")
        settings[key] = _convert(key, value, source=str(path))
    return settings


def _convert(key: str, value: Any, *, source: str) -> Any:
    if key not in DEFAULTS:
        return value
    default = DEFAULTS[key]
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError
            return text in ("1", "true", "yes")
        if isinstance(default, dict):
            parsed = json.loads(value) if isinstance(value, str) else value
            if not isinstance(parsed, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in parsed.values()):
                raise ValueError
            return {str(k): float(v) for k, v in parsed.items()}
        if isinstance(default, int):
            if isinstance(value, float) or isinstance(value, bool):
                raise ValueError
            return int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if value is None:
            return ""
        return str(value)
    except (ValueError, TypeError, json.JSONDecodeError):
        raise ConfigError(f"{source}: {key} must be {_describe(default)}, not {value!r}") from None


def _describe(default: Any) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, dict):
        return 'a JSON object of numbers such as {"purchase": 1.0}'
    return {int: "an integer", float: "a number", str: "a string"}[type(default)]


def _check_ranges(settings: dict[str, Any]) -> None:
    for key in ("DEFAULT_N", "MAX_N", "MAX_BATCH", "MAX_BODY_BYTES", "MAX_ID_LENGTH"):
        if settings[key] < 1:
            raise ConfigError(f"{key} must be at least 1, not {settings[key]}")
    # Lowering MAX_N alone should just work: the default follows it down.
    settings["DEFAULT_N"] = min(settings["DEFAULT_N"], settings["MAX_N"])
    if settings["MODEL_CHECK_SECONDS"] < 0:
        raise ConfigError("MODEL_CHECK_SECONDS must be 0 (check on every request) or more")
    for key in ("ANSWER_LOG_DAYS", "EXPERIMENT_FIGURES_SECONDS", "PREPARED_ANSWERS_MB"):
        if settings[key] < 0:
            raise ConfigError(f"{key} must be 0 or more, not {settings[key]}")
    for key in ("ATTRIBUTION_HOURS", "ANSWER_LOG_FLUSH_SECONDS"):
        if not settings[key] > 0:
            raise ConfigError(f"{key} must be more than 0, not {settings[key]}")
    try:
        settings["EVENT_WEIGHTS"] = check_event_weights(settings["EVENT_WEIGHTS"])
    except ValueError as error:
        raise ConfigError(f"EVENT_WEIGHTS: {error}") from None
