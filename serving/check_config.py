"""Check the API's configuration as a worker checks it at start: ``python -m serving.check_config``.

Reads the same environment as the server (RECOMMENDER_* settings, the RECOMMENDER_CONFIG
file, the experiments file) with the same code (serving/app.py's ``check_config``), but
loads no model and opens no event store. Prints nothing and exits 0 when the server could
start with it; else prints one line, ``error: <what is wrong, naming the setting, file or
field>``, on stderr and exits 2.

``python -m serving.production`` runs it before it starts any worker, and again on a
graceful reload (SIGHUP), which it refuses (logging this line; the running workers keep
serving) when the new workers could not start.
"""

from __future__ import annotations

from .app import check_config
from .config import ConfigError
from .production import stop_start


def main() -> None:
    try:
        check_config()
    except ConfigError as error:
        stop_start(str(error))


if __name__ == "__main__":
    main()
