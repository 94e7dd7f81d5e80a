"""How an erasure finds a customer's logged answers in the SQLite file without an index of
the answers table by customer.

Such an index takes every logged answer into a random place of a B-tree as large as the
log. With two workers writing one file, each one's page cache is emptied by the other's
commits, and that insert cost 8-11 µs of CPU a row once the log held 400,000 rows (2 µs
without it), more as the log grows; with it, recommendations ran at 57% of ``/health``'s
rate on the real server, without it at 76% (docs/benchmarks.md, "Serving", 2026-12-04,
late evening). So the answers table is only appended to, and two small tables say where a
customer's rows are:

- ``answer_day_ids``: for each day (UTC, ``served_at // 86400``), the first and last id of
  the answers logged for it: one row per day, updated once per batch;
- ``customer_answer_days``: (day, customer) for every day a customer was answered, keyed
  in that order, so a day's new customers go into today's end of the tree and pruning
  deletes a range.

A worker remembers the customers it has written for today (:class:`AnsweredToday`), so a
customer who reads many pages costs one row a day, not one per answer. An erasure looks up
the customer's days and deletes their rows within each day's id range: a scan of those
days' answers, rare work, instead of an index insert on every answer served.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

DAY_SECONDS = 86_400
_DAY_IDS = ("INSERT INTO answer_day_ids (day, first_id, last_id) VALUES (?, ?, ?) ON CONFLICT (day) DO UPDATE SET "
            "first_id = MIN(first_id, excluded.first_id), last_id = MAX(last_id, excluded.last_id)")
# Older stores indexed the answers by customer; the first open fills the two tables from the log.
MIGRATION = """
INSERT OR IGNORE INTO customer_answer_days (day, customer_id)
    SELECT DISTINCT served_at / 86400, customer_id FROM answers WHERE customer_id IS NOT NULL;
INSERT OR REPLACE INTO answer_day_ids (day, first_id, last_id)
    SELECT served_at / 86400, MIN(id), MAX(id) FROM answers GROUP BY served_at / 86400;
DROP INDEX answers_by_customer;
"""


class AnsweredToday:
    """The customers this process has written to ``customer_answer_days`` for today.

    Forgotten when the day changes, when it passes ``bound`` customers, and whenever the
    erasure list has grown since it was filled: another process's erasure deletes the
    customer's rows, and their next answers must write the day again.
    """

    def __init__(self, bound: int = 100_000):
        self.bound = bound
        self._customers: set[str] = set()
        self._day = -1
        self._last_erasure = -1

    def days_to_write(self, connection: sqlite3.Connection, rows: Sequence[tuple], first_id: int, last_id: int) -> tuple[set[str], int]:
        """Inside the transaction that inserted ``rows`` (as the answers table's columns,
        ids ``first_id`` to ``last_id``): record their days' id ranges and their customers'
        days. Returns today's customers newly written and the latest erasure's id then,
        to :meth:`remember` once committed."""
        (last_erasure,) = connection.execute("SELECT IFNULL(MAX(id), 0) FROM erasures").fetchone()
        today = int(time.time()) // DAY_SECONDS
        if last_erasure != self._last_erasure or today != self._day or len(self._customers) > self.bound:
            self._customers, self._day, self._last_erasure = set(), today, last_erasure
        pairs = {(served_at // DAY_SECONDS, customer) for _, customer, *_, served_at in rows if customer is not None}
        written = self._customers
        pairs = {(day, customer) for day, customer in pairs if day != today or customer not in written}
        connection.executemany(_DAY_IDS, [(day, first_id, last_id) for day in {row[-1] // DAY_SECONDS for row in rows}])
        if pairs:
            connection.executemany("INSERT OR IGNORE INTO customer_answer_days (day, customer_id) VALUES (?, ?)", pairs)
        return {customer for day, customer in pairs if day == today}, last_erasure

    def remember(self, written: tuple[set[str], int]) -> None:
        customers, last_erasure = written
        if last_erasure == self._last_erasure:  # not if an erasure was seen meanwhile (another thread's batch)
            self._customers |= customers


def erase(connection: sqlite3.Connection, customer_id: str) -> int:
    """Delete the customer's logged answers and day rows; returns how many answers."""
    days = connection.execute(
        "SELECT d.day, d.first_id, d.last_id FROM answer_day_ids d JOIN customer_answer_days c ON c.day = d.day AND c.customer_id = ?",
        (customer_id,),
    ).fetchall()
    deleted = 0
    for day, first_id, last_id in days:  # days' ranges may overlap (a batch across midnight): a row goes once
        deleted += connection.execute("DELETE FROM answers WHERE id BETWEEN ? AND ? AND customer_id = ?",
                                      (first_id, last_id, customer_id)).rowcount
        connection.execute("DELETE FROM customer_answer_days WHERE day = ? AND customer_id = ?", (day, customer_id))
    return deleted


def prune(connection: sqlite3.Connection, before: int) -> None:
    """Drop the day rows of days wholly before ``before``; yesterday's and today's stay
    whatever ``before`` says, because workers remember today's customers as written."""
    keep_from = min(before // DAY_SECONDS, int(time.time()) // DAY_SECONDS - 1)
    connection.execute("DELETE FROM customer_answer_days WHERE day < ?", (keep_from,))
    connection.execute("DELETE FROM answer_day_ids WHERE day < ?", (keep_from,))
