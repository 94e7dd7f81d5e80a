"""Settings: defaults, then the RECOMMENDER_CONFIG file, then RECOMMENDER_* variables, then the mapping."""

from __future__ import annotations

import json

import pytest

from serving import create_app
from serving.config import DEFAULTS, ConfigError, load_config


def test_defaults():
    settings = load_config(environ={})
    assert settings["MODEL_PATH"] == "models/current" and settings["EVENTS_DB"] == "events.sqlite3"
    assert settings["MAX_N"] == 100 and settings["MAX_BATCH"] == 1000 and settings["API_TOKEN"] == ""


def test_file_then_environment_then_mapping(tmp_path):
    config_file = tmp_path / "serving.json"
    config_file.write_text(json.dumps({"max_n": 20, "RECOMMENDER_MAX_BATCH": 5, "model_path": "from-file"}))
    environ = {"RECOMMENDER_CONFIG": str(config_file), "RECOMMENDER_MAX_N": "30", "RECOMMENDER_WITH_REASONS": "false"}
    settings = load_config({"model_path": "from-mapping"}, environ=environ)
    assert settings["MAX_N"] == 30 and settings["MAX_BATCH"] == 5
    assert settings["MODEL_PATH"] == "from-mapping" and settings["WITH_REASONS"] is False


@pytest.mark.parametrize(
    "environ, words",
    [
        ({"RECOMMENDER_MAX_N": "lots"}, "MAX_N must be an integer"),
        ({"RECOMMENDER_MAX_N": "0"}, "at least 1"),
        ({"RECOMMENDER_EVENT_WEIGHTS": "[1]"}, "EVENT_WEIGHTS"),
        ({"RECOMMENDER_CONFIG": "/nonexistent.json"}, "does not exist"),
    ],
)
def test_bad_settings_fail_at_start_with_a_sentence(environ, words):
    with pytest.raises(ConfigError, match=words):
        load_config(environ=environ)


def test_create_app_reads_the_environment_when_called(monkeypatch, app_config):
    monkeypatch.setenv("RECOMMENDER_MAX_N", "3")
    app = create_app(app_config)
    assert app.config["MAX_N"] == 3
    assert app.test_client().get("/v1/customers/c0/recommendations?n=4").status_code == 400
    assert set(DEFAULTS) <= set(app.config)


def test_the_event_store_is_named_by_events_url_over_events_db(app_config, tmp_path):
    from recommender.events import SQLiteEventStore
    from serving.state import EXTENSION

    app = create_app({**app_config, "EVENTS_URL": f"sqlite:///{tmp_path}/by-url.sqlite3"})
    store = app.extensions[EXTENSION].events
    assert isinstance(store, SQLiteEventStore) and store.path == tmp_path / "by-url.sqlite3"
    with pytest.raises(ConfigError, match="EVENTS_URL: 'mysql://db/x': not an event store"):
        create_app({**app_config, "EVENTS_URL": "mysql://db/x"})


def test_a_server_with_open_write_endpoints_says_so_at_start(app_config, caplog):
    from serving.app import OPEN_WRITES_WARNING

    with caplog.at_level("WARNING"):
        create_app({**app_config, "API_TOKEN": ""})
    assert OPEN_WRITES_WARNING in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        create_app({**app_config, "API_TOKEN": "s3cret"})
    assert "API_TOKEN is not set" not in caplog.text
