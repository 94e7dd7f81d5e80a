"""How long an erasure takes on a long answer log with no index by customer, and how long a
writer beside it waits (issue 20: the log lost its index so that every answer costs less).

    python -m research.erasure_cost [--answers 3000000] [--customers 30000]

Logs ``--answers`` answers of ``--customers`` customers into a fresh SQLite store through the
store itself (``add_answers``, 4,000 at a time, as a worker's answer log does), then erases
three customers while a second thread stores an event every 5 ms, and prints each erasure's
seconds and answers deleted, and the event writes' median and longest wait.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time

from recommender.events import AnswerRecord, Event, SQLiteEventStore
from research.common import parser, run_log


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("--answers", type=int, default=3_000_000)
    cli.add_argument("--customers", type=int, default=30_000)
    args = cli.parse_args()
    log = run_log(__file__)
    path = tempfile.mkdtemp(prefix="erasure-cost-") + "/events.sqlite3"
    store, draw, now = SQLiteEventStore(path), random.Random(7), int(time.time())
    for first in range(0, args.answers, 4000):
        store.add_answers([AnswerRecord(f"{draw.getrandbits(64):016x}-{k}", f"u{draw.randrange(args.customers)}", "recommendations",
                                        None, None, "v1", tuple(f"i{draw.randrange(40000)}" for _ in range(10)), now)
                           for k in range(first, min(first + 4000, args.answers))])
    waits, stop = [], threading.Event()

    def writer() -> None:
        beside = SQLiteEventStore(path)
        while not stop.is_set():
            started = time.perf_counter()
            beside.add([Event("writer", "i1")])
            waits.append(time.perf_counter() - started)
            time.sleep(0.005)

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.3)
    for customer in ("u1", "u2", "u3"):
        started = time.perf_counter()
        erasure = store.forget(customer)
        log(f"erasure of {customer}: {erasure.answers_deleted} answers deleted of {args.answers:,} in {time.perf_counter() - started:.2f} s")
    stop.set()
    thread.join()
    waits.sort()
    log(f"an event writer beside it: {len(waits)} writes, median wait {waits[len(waits) // 2] * 1e3:.1f} ms, longest {waits[-1] * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
