"""Settings for gunicorn, the selectable alternative to granian: ``python -m serving.production --server gunicorn``
(which runs ``gunicorn --config serving/gunicorn.conf.py``).

Environment (all optional):
    RECOMMENDER_BIND          address to listen on (default 127.0.0.1:8000)
    RECOMMENDER_WORKERS       worker processes (default: number of cores, at least 2)
    RECOMMENDER_THREADS       threads per worker (default 1: scoring keeps a core busy, so more
                              threads per worker gave no throughput on 2 cores in our runs)
    RECOMMENDER_TIMEOUT       seconds after which a worker stuck in one request is replaced (30; 0: never)
    PROMETHEUS_MULTIPROC_DIR  folder for per-worker metric files (default: a fresh temp folder)
plus every RECOMMENDER_* setting of serving/config.py (model path, event store, tokens).

Why these choices:
- preload off: each worker imports the app and loads the model itself, memory-mapped
  (np.load mmap_mode), so the workers share one copy of the arrays in the page cache
  and a worker never inherits state from a half-initialised master.
- one BLAS thread per worker: the workers already use every core; more BLAS threads
  would fight over them and make latency erratic. The variables must be set before
  numpy is imported, which happens in the workers, after this file has run.
"""

import os

from serving.production import checked_server_settings, prepare_environment

# One BLAS thread per worker, and an empty folder for the metric files: the same start as granian's.
prepare_environment()
# Checked as granian's are (one line and exit 2 for a bad value; python -m serving.production
# has checked them, and the app's configuration, before it ran gunicorn).
checked_settings = checked_server_settings()

wsgi_app = "serving:create_app()"
bind = os.environ.get("RECOMMENDER_BIND", "127.0.0.1:8000").split(",")
workers = checked_settings.workers
# gthread keeps client connections alive (sync workers close after every response).
worker_class = "gthread"
threads = checked_settings.threads
preload_app = False
# Several servers (tests, benchmarks) may run side by side; none needs gunicorn's control socket.
control_socket_disable = True
keepalive = 5
timeout = checked_settings.timeout
pidfile = os.environ.get("RECOMMENDER_PID_FILE") or None
graceful_timeout = 20
accesslog = os.environ.get("RECOMMENDER_ACCESS_LOG") or None
# Path without query string, no referer, no basic-auth user: a token a client wrongly puts
# in a URL (?token=...) or an Authorization header must never reach the log. Request time in µs.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(D)sus'
errorlog = "-"
loglevel = os.environ.get("RECOMMENDER_LOG_LEVEL", "info")


def on_starting(server):
    """A graceful reload (SIGHUP) goes ahead only with a configuration the new workers can
    start with (see serving.production.reload_refusal): gunicorn halts when a new worker
    fails to boot, and the old workers go with it."""
    from serving.production import reload_refusal

    reload = server.handle_hup  # the arbiter looks its signal handlers up by name on itself

    def handle_hup():
        refusal = reload_refusal()
        if refusal is None:
            reload()
        else:
            server.log.error("reload refused, the running workers keep serving: %s", refusal)

    server.handle_hup = handle_hup


def on_exit(server):
    """The metrics folder made for this server goes with it, as granian's does."""
    from serving.production import remove_made_metrics_folders

    remove_made_metrics_folders()


def post_fork(server, worker):
    """Send the app's log lines to stderr like gunicorn's; cap BLAS threads once more."""
    import logging

    from threadpoolctl import threadpool_limits

    logging.basicConfig(level=loglevel.upper(), format="[%(process)d] %(levelname)s %(name)s: %(message)s")
    threadpool_limits(1)  # belt and braces, in case numpy was imported before the variables were set


def post_worker_init(worker):
    """Keep the loaded app and model out of the garbage collector's full passes.

    A full collection walks every tracked object (about 60,000 once the app and model
    are loaded) and stalls the worker for about 20 ms; none of those objects is
    garbage, so they are moved to the permanent generation.
    """
    import gc

    gc.freeze()


def child_exit(server, worker):
    """Let /metrics drop the live gauges of a worker that has gone."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
