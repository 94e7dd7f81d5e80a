"""Development server: ``python -m serving --model models/current --port 8000``.

One process with threads, reloading nothing automatically but the model. For
production use gunicorn: ``gunicorn --config serving/gunicorn.conf.py``.
"""

from __future__ import annotations

import argparse
import logging
import sys

import werkzeug.serving

from . import create_app

# What --port takes; the rule of `recommender serve --port` too (training/commands.py: it cannot import this).
PORTS = "1-65535 (0: any free port)"


def main(argv: list[str] | None = None) -> None:
    """Parse the options and run Flask's development server until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m serving", description="Run the recommendation API for development.")
    parser.add_argument("--model", help="model folder or models/current (default: RECOMMENDER_MODEL_PATH or models/current)")
    parser.add_argument("--events-db", help="event store: a SQLite file, sqlite:///path or postgresql://... (default: RECOMMENDER_EVENTS_URL, RECOMMENDER_EVENTS_DB or events.sqlite3)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000, help=f"{PORTS}; default: %(default)s")
    parser.add_argument("--debug", action="store_true", help="Flask debug mode (never in production)")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:  # else the number would silently wrap round to another port
        parser.error(f"--port must be {PORTS}, not {args.port}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # werkzeug colours its request lines with ANSI codes even into a log file, and has no
    # public switch for it: colours only on a terminal.
    werkzeug.serving._log_add_style = sys.stderr.isatty()
    overrides = {}
    if args.model:
        overrides["MODEL_PATH"] = args.model
    if args.events_db:
        overrides["EVENTS_URL"] = args.events_db
    app = create_app(overrides)
    app.run(host=args.host, port=args.port, debug=args.debug, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
