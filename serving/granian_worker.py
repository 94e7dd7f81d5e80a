"""What each granian worker does before it takes requests (gunicorn's hooks, for granian).

granian calls :func:`create_worker_app` in every worker process, after the fork: so the
app, its model and numpy are loaded by the worker, never inherited from the master, and a
graceful reload (SIGHUP) loads new code as well as a new model.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import threading
import time

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def create_worker_app():
    """The WSGI app of one worker: the Flask app behind a request watchdog."""
    # Until granian installs its own handlers (after this returns) a worker keeps the master's
    # Python handlers for SIGTERM and SIGINT: a stop sent while the model loads would be
    # swallowed, and the worker would then serve on. The default disposition ends it at once.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # gunicorn's workers exit with their master; granian's do not, and an orphan would keep
    # the inherited listening socket open and answering, so no server could start on the port
    # again. The kernel sends SIGTERM when the master dies.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:
        raise SystemExit("the granian master exited before this worker started")

    from threadpoolctl import threadpool_limits

    from serving import create_app
    from serving.metrics import forget_dead_workers, multiprocess_mode
    from serving.production import server_settings

    logging.basicConfig(level=os.environ.get("RECOMMENDER_LOG_LEVEL", "info").upper(),
                        format="[%(process)d] %(levelname)s %(name)s: %(message)s")
    threadpool_limits(1)  # belt and braces: the launcher has set the variables before numpy loaded
    if multiprocess_mode():
        forget_dead_workers()
        _forget_this_worker_on_exit()
    app = create_app()
    # The loaded app and model are not garbage: keep them out of the collector's full passes,
    # which would walk them all and stall the worker (gunicorn.conf.py does the same).
    gc.freeze()
    timeout = server_settings().timeout  # checked by the launcher before any worker started
    return RequestWatchdog(app, timeout) if timeout > 0 else app


def _forget_this_worker_on_exit() -> None:
    """Drop this worker's live gauges when it stops gracefully. granian workers are
    multiprocessing children, which run multiprocessing's finalisers on exit (not atexit)."""
    import multiprocessing.util

    from prometheus_client import multiprocess

    multiprocessing.util.Finalize(None, multiprocess.mark_process_dead, args=(os.getpid(),), exitpriority=10)


class RequestWatchdog:
    """Ends the worker when one request has run longer than ``timeout`` seconds (gunicorn's
    ``timeout``, which granian lacks): a worker stuck in a request serves nobody, and granian
    starts a new one in its place (``respawn_failed_workers``)."""

    def __init__(self, app, timeout: float):
        self.app = app
        self.timeout = timeout
        self._started: dict[int, float] = {}  # thread -> when its request started
        threading.Thread(target=self._watch, name="request-watchdog", daemon=True).start()

    def __call__(self, environ, start_response):
        thread = threading.get_ident()
        self._started[thread] = time.monotonic()
        try:
            return self.app(environ, start_response)
        finally:
            self._started.pop(thread, None)

    def _watch(self) -> None:
        while True:
            time.sleep(min(1.0, self.timeout / 4))
            now = time.monotonic()
            if any(now - started > self.timeout for started in list(self._started.values())):
                log.critical("a request has run for more than %.0f s: this worker exits and is replaced", self.timeout)
                logging.shutdown()
                os._exit(70)  # EX_SOFTWARE; no clean-up: the worker is stuck
