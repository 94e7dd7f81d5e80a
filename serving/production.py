"""Run the API in production: ``python -m serving.production [--server granian|gunicorn]``.

granian (a Rust HTTP server with a WSGI interface) is the default: on this project's
2-core machine it answers 2-4 times the requests of gunicorn for the same app (see
docs/benchmarks.md, "Serving"). gunicorn stays selectable (``--server gunicorn`` or
``make serve SERVER=gunicorn``). Both read the same environment:

    RECOMMENDER_BIND          address to listen on (default 127.0.0.1:8000)
    RECOMMENDER_WORKERS       worker processes (default: number of cores, at least 2)
    RECOMMENDER_THREADS       threads per worker (default 1)
    RECOMMENDER_TIMEOUT       seconds after which a worker stuck in one request is replaced
                              (30; 0: never)
    RECOMMENDER_ACCESS_LOG    "-" (stderr) to write the access log; path, method, status, time
                              and never the query string (a token wrongly put in a URL stays out)
    RECOMMENDER_LOG_LEVEL     info by default
    RECOMMENDER_PID_FILE      where the master writes its pid (optional)
    PROMETHEUS_MULTIPROC_DIR  folder for per-worker metric files (default: a fresh temp folder)
plus every RECOMMENDER_* setting of serving/config.py (model path, event store, tokens).

What both servers guarantee, and how granian is made to (serving/granian_worker.py):
one BLAS thread per worker (set here, before any worker imports numpy); workers load the
app themselves after the fork, so a graceful reload (SIGHUP) also loads new code; a dead
worker is replaced (``--respawn-failed-workers``); a worker stuck in one request longer
than RECOMMENDER_TIMEOUT exits and is replaced (granian has no such timeout: a watchdog
thread in each worker does it); Prometheus metrics add up every live worker, and the files
of dead ones are dropped (granian has no child-exit hook: the dead are found by pid).

The configuration is checked once, before any worker starts (``python -m
serving.check_config``): a bad setting, config file or experiments file stops the start
with ``error: <the sentence>`` on stderr and exit status 2, as does a server setting above
that is not a usable number.
"""

from __future__ import annotations

import argparse
import errno
import http.client
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple, NoReturn, TypeVar

SERVERS = ("granian", "gunicorn")
T = TypeVar("T")
USAGE_ERROR = 2  # the exit status of a bad setting, as argparse's for a bad option
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")
GUNICORN_CONFIG = Path(__file__).with_name("gunicorn.conf.py")
# The access log line: client, time, method, path (never the query string), protocol, status, duration.
GRANIAN_ACCESS_LOG = '%(addr)s [%(time)s] "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).3fms'


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m serving.production", description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=SERVERS, default=os.environ.get("RECOMMENDER_SERVER", "granian"),
                        help="HTTP server (default: $RECOMMENDER_SERVER or granian)")
    args = parser.parse_args(argv)
    settings = checked_server_settings()
    # gunicorn reads these itself (its bind takes more forms: unix:PATH, several)
    listening = checked(granian_settings) if args.server == "granian" else None
    check_app_config()
    if args.server == "gunicorn":  # its config file prepares the environment
        os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG)])
    prepare_environment()
    try:
        run_granian(settings, listening)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        sys.exit(f"error: {os.environ.get('RECOMMENDER_BIND', '127.0.0.1:8000')} is already in use by another process "
                 "(a server still running? `make stop`, or choose another ADDRESS)")


class ServerSettings(NamedTuple):
    """The settings of the server itself, read alike by this launcher, gunicorn's config file
    and each granian worker."""

    workers: int
    threads: int  # per worker
    timeout: int  # seconds a request may run before its worker is replaced; 0: no limit


class ServerSettingError(ValueError):
    """RECOMMENDER_WORKERS, RECOMMENDER_THREADS or RECOMMENDER_TIMEOUT cannot be used."""


def server_settings(environ: Mapping[str, str] | None = None) -> ServerSettings:
    """The server's settings from ``environ`` (default ``os.environ``); an unset or empty variable
    takes its default. Raises ServerSettingError naming the variable and what it may be."""
    environ = os.environ if environ is None else environ
    at_least_one = "a whole number, at least 1"
    return ServerSettings(
        workers=_whole_number(environ, "RECOMMENDER_WORKERS", max(2, os.cpu_count() or 1), minimum=1, allowed=at_least_one),
        threads=_whole_number(environ, "RECOMMENDER_THREADS", 1, minimum=1, allowed=at_least_one),
        timeout=_whole_number(environ, "RECOMMENDER_TIMEOUT", 30, minimum=0, allowed="a whole number of seconds, 0 (no limit) or more"),
    )


def _whole_number(environ: Mapping[str, str], variable: str, default: int, *, minimum: int, allowed: str) -> int:
    text = environ.get(variable, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = None
    # Never quietly corrected: a worker count of 0 run as 1 hides the typo that wrote it.
    if value is None or value < minimum:
        raise ServerSettingError(f"{variable} must be {allowed}, not {text!r}")
    return value


class GranianSettings(NamedTuple):
    """What only the granian launcher reads: where to listen, how much to log, how long a
    reload waits for each new worker."""

    host: str
    port: int
    log_level: str
    respawn_interval: float


GRANIAN_LOG_LEVELS = ("critical", "error", "warning", "warn", "info", "debug", "notset")


def granian_settings(environ: Mapping[str, str] | None = None) -> GranianSettings:
    """RECOMMENDER_BIND (HOST:PORT), RECOMMENDER_LOG_LEVEL and RECOMMENDER_RESPAWN_INTERVAL, or
    ServerSettingError naming the variable (granian itself answered them with a traceback)."""
    environ = os.environ if environ is None else environ
    bind = environ.get("RECOMMENDER_BIND", "").strip() or "127.0.0.1:8000"
    host, _, port = bind.rpartition(":")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ServerSettingError(f"RECOMMENDER_BIND must be HOST:PORT with a port from 1 to 65535, not {bind!r}")
    level = environ.get("RECOMMENDER_LOG_LEVEL", "").strip().lower() or "info"
    if level not in GRANIAN_LOG_LEVELS:
        raise ServerSettingError(f"RECOMMENDER_LOG_LEVEL must be one of {', '.join(GRANIAN_LOG_LEVELS)}, not {level!r}")
    text = environ.get("RECOMMENDER_RESPAWN_INTERVAL", "").strip() or "5"
    try:
        interval = float(text)
    except ValueError:
        interval = math.nan
    if not (math.isfinite(interval) and interval > 0):
        raise ServerSettingError(f"RECOMMENDER_RESPAWN_INTERVAL must be a number of seconds above 0, not {text!r}")
    return GranianSettings(host.strip("[]") or "127.0.0.1", int(port), level, interval)


def checked(read: Callable[[], T]) -> T:
    """``read()`` (:func:`server_settings`, :func:`granian_settings`), or the start stopped with
    one line naming the variable."""
    try:
        return read()
    except ServerSettingError as error:
        stop_start(str(error))


def checked_server_settings() -> ServerSettings:
    """:func:`server_settings`, checked (gunicorn's config file reads them so)."""
    return checked(server_settings)


def check_app_config() -> None:
    """Check the app's configuration once, before any worker starts, and stop the start if it
    is bad: ``serving.check_config`` prints its one ``error:`` line and this process exits
    with its status. Unchecked, every worker would fail at start with a traceback, again and
    again, until granian gave up on a crash loop. Run in a child process because this one
    forks the workers: what it imported they would inherit, and a graceful reload (SIGHUP)
    would not load new code."""
    try:
        checked = _run_config_check(capture=False)
    except KeyboardInterrupt:
        sys.exit(130)
    if checked.returncode != 0:
        sys.exit(checked.returncode if checked.returncode > 0 else 1)  # < 0: killed by a signal


def reload_refusal() -> str | None:
    """Why a graceful reload must not go ahead (the configuration's error line), or None.

    A reload's new workers read the configuration again. With a bad one (a config file
    edited and left broken) none of them starts; the server then stops the old ones too and
    exits on a crash loop, so one typo took the whole service down. Both servers' reload
    handlers ask this first, and a refused reload leaves the running workers serving."""
    checked = _run_config_check(capture=True)
    if checked.returncode == 0:
        return None
    return checked.stderr.strip().removeprefix("error: ") or f"the configuration check exited {checked.returncode}"


def _run_config_check(*, capture: bool) -> subprocess.CompletedProcess:
    environment = {**os.environ, **dict.fromkeys(BLAS_THREAD_VARIABLES, "1")}
    return subprocess.run([sys.executable, "-m", "serving.check_config"], env=environment, capture_output=capture, text=capture)


def stop_start(message: str) -> NoReturn:
    """End the start with ``error: <message>`` on stderr (no traceback) and exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(USAGE_ERROR)


_METRICS_FOLDERS_EMPTIED: set[str] = set()
_METRICS_FOLDERS_MADE: set[str] = set()  # made here, in the temporary folder: removed when the server ends


def remove_made_metrics_folders() -> None:
    """The metric files' folder this server made for itself, once the server has ended (a
    folder it was given is the operator's, and stays); each start left one in /tmp."""
    for folder in _METRICS_FOLDERS_MADE:
        shutil.rmtree(folder, ignore_errors=True)
    _METRICS_FOLDERS_MADE.clear()


def prepare_environment() -> None:
    """What every worker must find in its environment when it starts: one BLAS thread, and an
    empty folder for the metric files (files of an earlier run would be added to ours).
    Emptied once per server: gunicorn runs its config file, hence this, again at every
    graceful reload, when the files hold the running and replaced workers' counts."""
    for variable in BLAS_THREAD_VARIABLES:
        os.environ[variable] = "1"
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        folder = tempfile.mkdtemp(prefix="recommender-metrics-")
        _METRICS_FOLDERS_MADE.add(folder)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    os.makedirs(folder, exist_ok=True)
    if folder in _METRICS_FOLDERS_EMPTIED:
        return
    _METRICS_FOLDERS_EMPTIED.add(folder)
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.unlink(path)


def run_granian(settings: ServerSettings, listening: GranianSettings) -> None:
    from granian.constants import HTTPModes, Interfaces
    from granian.log import LogLevels

    access_log = bool(os.environ.get("RECOMMENDER_ACCESS_LOG"))
    pid_file = os.environ.get("RECOMMENDER_PID_FILE")
    server = _shared_socket_granian()(
        "serving.granian_worker:create_worker_app",
        factory=True,
        address=listening.host,
        port=listening.port,
        interface=Interfaces.WSGI,
        http=HTTPModes.http1,
        websockets=False,
        workers=settings.workers,
        # One thread per worker runs the app: scoring keeps a core busy, and more threads per
        # worker gave no throughput on 2 cores (as with gunicorn's gthread).
        blocking_threads=settings.threads,
        runtime_threads=1,
        backlog=1024,
        http1_settings=_http1_settings(),
        respawn_failed_workers=True,
        # A reload replaces one worker at a time and waits this long for the new one to load
        # its model before stopping the next old one: well above a worker's start (1-2 s).
        respawn_interval=listening.respawn_interval,
        workers_kill_timeout=20,  # gunicorn's graceful_timeout: in-flight requests get 20 s
        log_enabled=True,
        log_level=LogLevels(listening.log_level),
        log_access=access_log,
        log_access_format=GRANIAN_ACCESS_LOG,
        pid_file=Path(pid_file) if pid_file else None,
    )
    try:
        server.serve()
    finally:
        remove_made_metrics_folders()


def _shared_socket_granian():
    """granian's server with one listening socket for all workers, as gunicorn's.

    On Linux granian gives each worker a socket of its own (SO_REUSEPORT): the connections
    the kernel had queued at a worker that stops, as each does in a reload, are reset
    (granian issue #567). Bound once in the master and inherited, the queue is shared, and
    a stopping worker's share is accepted by the others. granian builds the shared socket
    this way on other systems; this takes its code path on Linux too, through its internal
    names (tests/test_real_server.py's reload under traffic fails if a granian changes them).

    The socket is bound here, by Python, without SO_REUSEPORT (granian's own sets it): with
    it, a second server started on a port in use binds too, and the kernel splits the
    connections between two servers, possibly of two models, with no error anywhere. Now
    that start fails with "address already in use", as gunicorn's does.
    """
    import socket

    from granian.log import logger as granian_log
    from granian.net import SocketHolder
    from granian.server import Server

    class SharedSocketServer(Server):
        def _reload(self, spawn_target, target_loader):
            # Taken now, before the check: a stop (or a worker's exit) that comes during its
            # second sets the event again, and must not be cleared by what follows.
            self.reload_signal = False
            self.main_loop_interrupt.clear()
            refusal = reload_refusal()
            if self.interrupt_signal or self.interrupt_children:
                self.main_loop_interrupt.set()  # the serve loop handles it; this reload is dropped
                granian_log.warning("reload dropped: a stop or a worker's exit came during its configuration check")
                return None
            if refusal is not None:
                granian_log.error("reload refused, the running workers keep serving: %s", refusal)
                return None
            return super()._reload(spawn_target, target_loader)

        def _init_shared_socket(self):
            if self.bind_uds:
                return super()._init_shared_socket()
            family = socket.AF_INET6 if ":" in self.bind_addr else socket.AF_INET
            self._sso = socket.create_server((self.bind_addr, self.bind_port), family=family, backlog=self.backlog)  # SO_REUSEADDR only
            self._sso.set_inheritable(True)
            self._sfd = self._sso.fileno()
            self._shd = SocketHolder(self._sfd, False, self.backlog)
            self._ssp = None

    return SharedSocketServer


def _http1_settings():
    from granian.http import HTTP1Settings

    # Idle keep-alive connections close after 5 s, as gunicorn's keepalive = 5.
    return HTTP1Settings(header_read_timeout=5000)


class ServerDidNotStart(RuntimeError):
    """The server exited, or did not answer /ready in time; the message ends with its log."""


def spawn(
    settings: Mapping[str, str], *, server: str = "granian", log_path: Path | None = None, ready_seconds: float = 60, root: Path | None = None
) -> subprocess.Popen:
    """Start the production server on loopback in a new process group and return once it is
    ready: every worker answers /ready when ``RECOMMENDER_SERVED_BY_HEADER`` is true (tests),
    else the first one does. ``root``: the checkout to run (default: this one). For tests
    and benchmarks; ``stop`` ends it."""
    environment = {**os.environ, **settings}
    root = root or Path(__file__).resolve().parents[1]
    # This checkout's code, whatever the working folder (an editable install may point elsewhere).
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), environment.get("PYTHONPATH")]))
    host, _, port = environment.get("RECOMMENDER_BIND", "127.0.0.1:8000").rpartition(":")
    workers = int(environment.get("RECOMMENDER_WORKERS", "2")) if environment.get("RECOMMENDER_SERVED_BY_HEADER") == "true" else 1
    log = open(log_path, "ab") if log_path is not None else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", "serving.production", "--server", server],
        env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root,
    )
    if log_path is not None:
        log.close()
    deadline, ready = time.monotonic() + ready_seconds, set()
    while len(ready) < workers:
        try:
            connection = http.client.HTTPConnection(host, int(port), timeout=2)
            connection.request("GET", "/ready")
            response = connection.getresponse()
            response.read()
            connection.close()
            if response.status == 200:
                ready.add(response.getheader("X-Served-By", ""))
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            kill(process)
            tail = log_path.read_text(errors="replace")[-3000:] if log_path is not None else "(no log kept)"
            raise ServerDidNotStart(f"{server} did not become ready on {host}:{port}:\n{tail}")
        time.sleep(0.1)
    return process


def stop(process: subprocess.Popen, seconds: float = 30) -> None:
    """A graceful stop (SIGTERM to the master), then SIGKILL of the whole group if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            kill(process)


def kill(process: subprocess.Popen) -> None:
    """SIGKILL the master and every worker at once: no shutdown code runs anywhere."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


if __name__ == "__main__":
    main()
