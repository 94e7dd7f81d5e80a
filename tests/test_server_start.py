"""Starting the production server with a configuration it cannot use: one sentence, exit 2.

The configuration is checked once, before any worker starts (``serving.check_config``,
with the app's own checking code): a bad setting must stop the start with ``error: <the
sentence>`` and no traceback, not fail every worker again and again until granian gives up
on a crash loop. ``make serve-background`` must then say why at once, and leave no pid file.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from serving.app import check_config
from serving.config import ConfigError
from serving.production import GranianSettings, ServerSettingError, ServerSettings, granian_settings, server_settings
from tests.conftest import free_port
from tests.server_process import SERVERS, kill_group

ROOT = Path(__file__).resolve().parent.parent
SHARES_TOO_HIGH = {"experiments": [{"name": "homepage", "variants": [
    {"name": "control", "model": "popular", "share": 0.5}, {"name": "default", "model": "current", "share": 0.6}]}]}


@pytest.fixture
def bad_experiments(tmp_path) -> Path:
    path = tmp_path / "exp-bad.json"
    path.write_text(json.dumps(SHARES_TOO_HIGH))
    return path


# -- the checks themselves -------------------------------------------------------------
def test_the_start_check_refuses_what_a_worker_would_without_loading_a_model(tmp_path, bad_experiments):
    missing_model = {"MODEL_PATH": str(tmp_path / "models" / "current"), "EVENTS_DB": str(tmp_path / "events.sqlite3")}
    with pytest.raises(ConfigError, match=r"^EXPERIMENTS: .*exp-bad.json: experiments\[0\] \(homepage\).variants: the shares add up to 1.1, not 1$"):
        check_config({**missing_model, "EXPERIMENTS": str(bad_experiments)})
    with pytest.raises(ConfigError, match="^EVENTS_URL: 'mysql://db/x': not an event store"):
        check_config({**missing_model, "EVENTS_URL": "mysql://db/x"})
    # A model not there yet is no configuration error: workers start and wait for it (/ready 503).
    assert check_config(missing_model)["MODEL_PATH"] == missing_model["MODEL_PATH"]
    assert not (tmp_path / "events.sqlite3").exists()  # checked, not opened


def test_the_start_check_refuses_a_sqlite_store_that_cannot_be_created(tmp_path):
    # It used to pass, and then every recommendation answered 500 (FileNotFoundError at the first query).
    settings = {"MODEL_PATH": str(tmp_path / "models" / "current")}
    with pytest.raises(ConfigError, match=r"^EVENTS_DB: /proc/x/events.sqlite3 cannot be created: /proc is not a folder this server may write in"):
        check_config({**settings, "EVENTS_DB": "/proc/x/events.sqlite3"})
    (tmp_path / "blocked").write_text("a file where the store's folder would go")
    with pytest.raises(ConfigError, match="blocked is not a folder this server may write in"):
        check_config({**settings, "EVENTS_URL": f"sqlite:///{tmp_path}/blocked/events.sqlite3"})
    with pytest.raises(ConfigError, match="is a folder, not a database file"):
        check_config({**settings, "EVENTS_DB": str(tmp_path)})
    assert check_config({**settings, "EVENTS_DB": str(tmp_path / "new" / "deeper" / "events.sqlite3")})  # folders are made at first use
    assert not (tmp_path / "new").exists()


def test_a_store_whose_folder_cannot_be_made_is_an_outage_not_a_bug(tmp_path):
    import sqlite3

    from recommender.events import EventStore

    (tmp_path / "blocked").write_text("a file where the store's folder would go")
    store = EventStore(tmp_path / "blocked" / "events.sqlite3")
    with pytest.raises(sqlite3.OperationalError, match="cannot open the event store"):
        store.customer_feedback("c0")  # serving answers such errors from the model alone (reads) or 503 (writes)


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"RECOMMENDER_WORKERS": "abc"}, "RECOMMENDER_WORKERS must be a whole number, at least 1, not 'abc'"),
        ({"RECOMMENDER_WORKERS": "0"}, "RECOMMENDER_WORKERS must be a whole number, at least 1, not '0'"),
        ({"RECOMMENDER_WORKERS": "-3"}, "RECOMMENDER_WORKERS must be a whole number, at least 1, not '-3'"),
        ({"RECOMMENDER_THREADS": "1.5"}, "RECOMMENDER_THREADS must be a whole number, at least 1, not '1.5'"),
        ({"RECOMMENDER_TIMEOUT": "-1"}, "RECOMMENDER_TIMEOUT must be a whole number of seconds, 0 (no limit) or more, not '-1'"),
    ],
)
def test_server_settings_that_cannot_be_used_are_refused_never_corrected(environ, message):
    with pytest.raises(ServerSettingError) as refused:
        server_settings(environ)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"RECOMMENDER_BIND": "127.0.0.1:99999"}, "RECOMMENDER_BIND must be HOST:PORT with a port from 1 to 65535, not '127.0.0.1:99999'"),
        ({"RECOMMENDER_BIND": "localhost"}, "RECOMMENDER_BIND must be HOST:PORT with a port from 1 to 65535, not 'localhost'"),
        ({"RECOMMENDER_LOG_LEVEL": "loud"}, "RECOMMENDER_LOG_LEVEL must be one of critical, error, warning, warn, info, debug, notset, not 'loud'"),
        ({"RECOMMENDER_RESPAWN_INTERVAL": "abc"}, "RECOMMENDER_RESPAWN_INTERVAL must be a number of seconds above 0, not 'abc'"),
        ({"RECOMMENDER_RESPAWN_INTERVAL": "0"}, "RECOMMENDER_RESPAWN_INTERVAL must be a number of seconds above 0, not '0'"),
    ],
)
def test_granians_own_settings_that_cannot_be_used_are_refused(environ, message):
    # granian answered each of these with a traceback at start.
    with pytest.raises(ServerSettingError) as refused:
        granian_settings(environ)
    assert str(refused.value) == message
    assert granian_settings({"RECOMMENDER_BIND": "[::1]:8001", "RECOMMENDER_LOG_LEVEL": "DEBUG"}) == GranianSettings("::1", 8001, "debug", 5.0)
    assert granian_settings({}) == GranianSettings("127.0.0.1", 8000, "info", 5.0)


def test_server_settings_and_their_defaults():
    assert server_settings({"RECOMMENDER_WORKERS": "3", "RECOMMENDER_THREADS": " 2 ", "RECOMMENDER_TIMEOUT": "0"}) == ServerSettings(3, 2, 0)
    defaults = server_settings({"RECOMMENDER_THREADS": ""})  # empty: as if unset
    assert defaults == ServerSettings(max(2, os.cpu_count() or 1), 1, 30)


# -- the real launcher -----------------------------------------------------------------
def run_production(server: str, settings: dict[str, str], seconds: float = 30) -> subprocess.CompletedProcess:
    """``python -m serving.production`` run to its end; one still running after ``seconds`` fails the test."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **settings}
    process = subprocess.Popen([sys.executable, "-m", "serving.production", "--server", server], env=environment, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        kill_group(process)
        stdout, stderr = process.communicate()
        pytest.fail(f"{server} still running after {seconds} s instead of refusing its configuration:\n{stderr[-2000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.slow
@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize(
    "settings, message",
    [
        ({"RECOMMENDER_EXPERIMENTS": "{experiments}"},
         "EXPERIMENTS: {experiments}: experiments[0] (homepage).variants: the shares add up to 1.1, not 1"),
        ({"RECOMMENDER_MAX_N": "abc"}, "environment variable RECOMMENDER_MAX_N: MAX_N must be an integer, not 'abc'"),
        ({"RECOMMENDER_CONFIG": "/nonexistent.json"}, "RECOMMENDER_CONFIG names /nonexistent.json, which does not exist"),
        ({"RECOMMENDER_WORKERS": "abc"}, "RECOMMENDER_WORKERS must be a whole number, at least 1, not 'abc'"),
        ({"RECOMMENDER_WORKERS": "0"}, "RECOMMENDER_WORKERS must be a whole number, at least 1, not '0'"),
        ({"RECOMMENDER_THREADS": "-3"}, "RECOMMENDER_THREADS must be a whole number, at least 1, not '-3'"),
        ({"RECOMMENDER_TIMEOUT": "abc"}, "RECOMMENDER_TIMEOUT must be a whole number of seconds, 0 (no limit) or more, not 'abc'"),
    ],
    ids=["experiments", "max-n", "config-file", "workers-abc", "workers-0", "threads", "timeout"],
)
def test_a_bad_configuration_stops_the_start_in_one_sentence(server, settings, message, tmp_path, bad_experiments):
    check_start_is_refused(server, settings, message, tmp_path, bad_experiments)


@pytest.mark.slow
def test_a_bad_log_level_stops_granians_start_in_one_sentence(tmp_path, bad_experiments):
    check_start_is_refused("granian", {"RECOMMENDER_LOG_LEVEL": "loud"},
                           "RECOMMENDER_LOG_LEVEL must be one of critical, error, warning, warn, info, debug, notset, not 'loud'",
                           tmp_path, bad_experiments)


def check_start_is_refused(server, settings, message, tmp_path, bad_experiments):
    settings = {name: value.format(experiments=bad_experiments) for name, value in settings.items()}
    started = run_production(server, {
        "RECOMMENDER_BIND": f"127.0.0.1:{free_port()}", "RECOMMENDER_WORKERS": "2",
        "RECOMMENDER_MODEL_PATH": str(tmp_path / "models" / "current"), "RECOMMENDER_EVENTS_DB": str(tmp_path / "events.sqlite3"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), **settings,
    })
    assert (started.returncode, started.stderr, started.stdout) == (2, f"error: {message.format(experiments=bad_experiments)}\n", "")


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("make") and shutil.which("setsid")), reason="needs make and setsid")
def test_make_serve_background_says_at_once_why_the_server_exited_and_keeps_no_pid_file(tmp_path):
    """The port taken by another program: the server exits at start. The target must stop
    waiting then, show the log's error line, and remove out/server.pid, whose dead pid a
    later ``make stop`` would kill were the number given to another process."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "stamp").touch()  # the venv stamp, never remade (-o): this venv runs, nothing is installed
    port = free_port()
    with socket.socket() as holder:  # bound, not listening: /ready is refused at once, the bind fails
        holder.bind(("127.0.0.1", port))
        began = time.monotonic()
        made = subprocess.run(
            ["make", "--no-print-directory", "-o", "stamp", "STAMP=stamp", f"BIN={Path(sys.executable).parent}", "serve-background",
             f"ADDRESS=127.0.0.1:{port}", f"MODEL={tmp_path / 'models' / 'current'}"],
            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT), "RECOMMENDER_EVENTS_DB": str(tmp_path / "events.sqlite3")},
            capture_output=True, text=True, timeout=120,
        )
        took = time.monotonic() - began
    assert made.returncode != 0
    assert f"error: 127.0.0.1:{port} is already in use by another process" in made.stdout
    assert "the server exited at start; see out/server.log" in made.stdout
    assert (tmp_path / "out" / "server.log").is_file() and not (tmp_path / "out" / "server.pid").exists()
    assert took < 15, f"make serve-background took {took:.1f} s to see that the server had exited"


@pytest.mark.slow
def test_make_dashboard_uses_the_background_server_where_it_runs(tmp_path, models_dir):
    """A server started with ADDRESS=...:<port>: ``make dashboard`` without ADDRESS used to stop
    it (serve-background's first step) and start another on the default address."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "stamp").touch()  # the venv stamp, never remade (-o): this venv runs, nothing is installed
    address = f"127.0.0.1:{free_port()}"

    def make(*targets: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["make", "--no-print-directory", "-o", "stamp", "STAMP=stamp", f"BIN={Path(sys.executable).parent}", *targets, f"MODEL={models_dir / 'current'}"],
            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT), "RECOMMENDER_EVENTS_DB": str(tmp_path / "events.sqlite3")},
            capture_output=True, text=True, timeout=120,
        )

    started = make("serve-background", f"ADDRESS={address}")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        pid = (tmp_path / "out" / "server.pid").read_text().strip()
        shown = make("dashboard")
        assert shown.returncode == 0 and f"Dashboard: http://{address}/dashboard/" in shown.stdout, shown.stdout + shown.stderr
        assert (tmp_path / "out" / "server.pid").read_text().strip() == pid  # the same server, still running
        os.kill(int(pid), 0)
        # Another address that is taken: refused before the running server is stopped (a new user's
        # trial lost the demo server to a start that could not bind).
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            taken = f"127.0.0.1:{holder.getsockname()[1]}"
            refused = make("serve-background", f"ADDRESS={taken}")
        assert refused.returncode != 0
        assert f"error: {taken} is already in use; the background server on {address} keeps running" in refused.stdout
        assert (tmp_path / "out" / "server.pid").read_text().strip() == pid
        os.kill(int(pid), 0)
    finally:
        assert "server stopped" in make("stop").stdout
    assert not (tmp_path / "out" / "server.address").exists()
