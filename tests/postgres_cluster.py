"""A throwaway PostgreSQL cluster for tests and benchmarks: initdb in a temporary folder,
pg_ctl on a loopback port, removed afterwards. Never a system service.

Removed also when the process that started it dies without removing it (a ``make test``
stopped by SIGTERM or SIGKILL, which runs no fixture's teardown): a small shell watches
that process and then stops the server and deletes the folder. Without it, every such
run left a PostgreSQL server running.

PostgreSQL refuses to run as root; when the tests run as root (CI containers do), the
cluster belongs to the ``postgres`` user that the Debian package creates, and its
commands run through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DATABASE = "recommender"
ROLE = "recommender"


def postgres_binaries() -> Path | None:
    """The folder of initdb and pg_ctl (Debian keeps them out of PATH), or None."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return Path(candidates[-1]).parent if candidates else None


def why_unavailable() -> str | None:
    """None when a cluster can be started here; else the reason, for a test's skip."""
    if postgres_binaries() is None:
        return "PostgreSQL is not installed (make test installs the Debian package postgresql: `make postgresql`)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a 'postgres' user to own the cluster"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ThrowawayCluster:
    """One cluster with one database; ``url`` is what ``RECOMMENDER_EVENTS_URL`` takes."""

    def __init__(self, folder: Path | None = None, port: int | None = None):
        self.folder = Path(folder or tempfile.mkdtemp(prefix="recommender-postgres-"))
        self.port = port or _free_port()
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.bin = postgres_binaries()
        self._as_postgres = os.geteuid() == 0
        self._watchdog: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{DATABASE}"

    def _command(self, *command: str) -> tuple[str, ...]:
        command = (str(self.bin / command[0]), *command[1:])
        return ("runuser", "-u", "postgres", "--", *command) if self._as_postgres else command

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(self._command(*command), capture_output=True, text=True, check=check)

    def _watch_owner(self) -> None:
        """Stop the server and delete the folder once this process is gone, however it ended.
        The watcher is a session of its own, so a signal to the test run's process group
        reaches the tests, not it."""
        stop = shlex.join(self._command("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"))
        script = f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {shlex.quote(str(self.folder))}"
        self._watchdog = subprocess.Popen(["sh", "-c", script], start_new_session=True,
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> ThrowawayCluster:
        """initdb (the first time), then start the server and wait until it accepts connections."""
        if self._as_postgres:
            self.folder.chmod(0o755)
            shutil.chown(self.folder, "postgres", "postgres")
        if self._watchdog is None:
            self._watch_owner()
        if not self.data.exists():
            self._run("initdb", "-D", str(self.data), "-U", ROLE, "--auth=trust", "-E", "UTF8", "--no-instructions")
            if self._as_postgres:
                self.log.touch()
                shutil.chown(self.log, "postgres", "postgres")
            self._pg_ctl_start()
            self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", ROLE, DATABASE)
        else:
            self._pg_ctl_start()
        return self

    def _pg_ctl_start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=200"
        result = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start", check=False)
        if result.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start: {result.stderr}\n{self.log.read_text(errors='replace')[-2000:]}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: roll back open transactions, disconnect everyone)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop, stay down ``down_seconds``, start again: what a database failover looks like to clients."""
        self.stop()
        time.sleep(down_seconds)
        self._pg_ctl_start()

    def remove(self) -> None:
        """Stop the server (immediately) and delete the cluster's folder."""
        if self._watchdog is not None:
            self._watchdog.kill()
            self._watchdog.wait()
            self._watchdog = None
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> ThrowawayCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.remove()
