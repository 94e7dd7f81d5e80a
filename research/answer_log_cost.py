"""What one logged answer costs SQLite when every worker writes the same file (issue 20).

    python -m research.answer_log_cost [--rows 2000] [--batches 25]

Two processes, as two server workers, each insert batches of answer rows (the answers table of
recommender/events/sqlite.py, 500 rows per INSERT as the store does) into one WAL database, with
and without the customer index that erasure read until 2026-12-05, and print each process's CPU
per row; then the same rows through the store itself (``SQLiteEventStore.add_answers``, no
index, its Python included). A single writer is printed first for comparison. ``--batches 100``
(400,000 rows) shows the index's cost growing with the log.

``--postgres``: the same two writers through ``PostgresEventStore.add_answers`` into a throwaway
cluster (as ``make stress`` starts one), with and without PostgreSQL's index by customer,
printing the writers' CPU per row and the database server's (its processes and their exited
connections).
"""

from __future__ import annotations

import multiprocessing
import random
import sqlite3
import tempfile
import time

from research.common import parser, run_log

COLUMNS = "recommendation_id, customer_id, endpoint, experiment, variant, model_version, items, served_at"
TABLE = ("CREATE TABLE answers (id INTEGER PRIMARY KEY, recommendation_id TEXT NOT NULL, customer_id TEXT, endpoint TEXT NOT NULL, "
         "experiment TEXT, variant TEXT, model_version TEXT NOT NULL, items TEXT NOT NULL, served_at INTEGER NOT NULL)")
PER_INSERT = 500


def answer_rows(count: int, first: int, seed: int) -> list[tuple]:
    """Rows shaped like bench-serve's: 30,000 customers, ten of 40,000 items each."""
    draw, now = random.Random(seed), int(time.time())
    return [(f"{draw.getrandbits(64):016x}-{first + k}", f"u{draw.randrange(30000)}", "recommendations", None, None,
             "20261204T152756Z-als-3cf9bd", "\x1f".join(f"i{draw.randrange(40000)}" for _ in range(10)), now) for k in range(count)]


def writer(path: str, seed: int, rows: int, batches: int, results) -> None:
    connection = sqlite3.connect(path, isolation_level=None, timeout=10)
    connection.execute("PRAGMA synchronous = NORMAL")
    statement = f"INSERT INTO answers ({COLUMNS}) VALUES " + ",".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * PER_INSERT)
    seconds = 0.0
    for batch in range(batches):
        data = answer_rows(rows, batch * rows, seed * 1000 + batch)
        started = time.process_time()
        connection.execute("BEGIN IMMEDIATE")
        for start in range(0, rows - rows % PER_INSERT, PER_INSERT):
            connection.execute(statement, [value for row in data[start : start + PER_INSERT] for value in row])
        connection.execute("COMMIT")
        seconds += time.process_time() - started
        time.sleep(0.05)  # the other writer's turn, as workers flushing every 0.2 s interleave
    results.put(seconds / (batches * (rows - rows % PER_INSERT)) * 1e6)


def store_writer(location: str, seed: int, rows: int, batches: int, results) -> None:
    """The same rows through the product's store (a SQLite path or a PostgreSQL URL), timed the same way."""
    from recommender.events import AnswerRecord, open_event_store

    store, seconds = open_event_store(location), 0.0
    for batch in range(batches):
        records = [AnswerRecord(*row[:6], tuple(row[6].split("\x1f")), row[7]) for row in answer_rows(rows, batch * rows, seed * 1000 + batch)]
        started = time.process_time()
        store.add_answers(records)
        seconds += time.process_time() - started
        time.sleep(0.05)
    store.close()
    results.put(seconds / (batches * rows) * 1e6)


def _run(target, path: str, writers: int, args) -> list[float]:
    results = multiprocessing.Queue()
    processes = [multiprocessing.Process(target=target, args=(path, seed, args.rows, args.batches, results)) for seed in range(writers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    return sorted(results.get() for _ in processes)


def postgres_seconds() -> float:
    """CPU seconds of every PostgreSQL process so far, with their exited children (connections)."""
    import os

    ticks = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as command:
                if b"postgres" not in command.read():
                    continue
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(field) for field in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_costs(args, log) -> None:
    from recommender.events import PostgresEventStore
    from tests.postgres_cluster import ThrowawayCluster

    with ThrowawayCluster() as cluster:
        for indexed in (True, False, True, False):
            store = PostgresEventStore(cluster.url)
            store._run(lambda connection: connection.execute("TRUNCATE answers"), write=True)
            statement = "CREATE INDEX IF NOT EXISTS answers_by_customer ON answers (customer_id)" if indexed else "DROP INDEX IF EXISTS answers_by_customer"
            store._run(lambda connection, statement=statement: connection.execute(statement), write=True)
            store.close()
            server_before = postgres_seconds()
            costs = _run(store_writer, cluster.url, 2, args)
            server = (postgres_seconds() - server_before) / (2 * args.batches * args.rows) * 1e6
            log(f"PostgreSQL, 2 writers, {'with' if indexed else 'without'} the index by customer: writers "
                + ", ".join(f"{cost:.2f}" for cost in costs) + f" µs of CPU per row; database server {server:.2f} µs per row")


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("--rows", type=int, default=2000)
    cli.add_argument("--batches", type=int, default=25)
    cli.add_argument("--postgres", action="store_true", help="measure the PostgreSQL store instead")
    args = cli.parse_args()
    log = run_log(__file__)
    if args.postgres:
        postgres_costs(args, log)
        return
    for writers, indexed in ((1, True), (2, True), (2, False), (2, "store")):
        path = tempfile.mkdtemp(prefix="answer-log-") + "/events.sqlite3"
        if indexed == "store":
            costs = _run(store_writer, path, writers, args)
            log(f"{writers} writer(s), through SQLiteEventStore.add_answers: " + ", ".join(f"{cost:.2f}" for cost in costs) + " µs of CPU per row")
            continue
        setup = sqlite3.connect(path, isolation_level=None)
        setup.execute("PRAGMA journal_mode = WAL")
        setup.execute(TABLE)
        if indexed:
            setup.execute("CREATE INDEX answers_by_customer ON answers (customer_id)")
        setup.close()
        costs = _run(writer, path, writers, args)
        log(f"{writers} writer(s), {'with' if indexed else 'without'} the customer index: "
            + ", ".join(f"{cost:.2f}" for cost in costs) + " µs of CPU per row")


if __name__ == "__main__":
    main()

