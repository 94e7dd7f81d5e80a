"""Which customers have stored events, known in every process without a query per request.

Serving asks the event store for the customer's new events on every request, and the
answer is almost always "none". Inside a request that query cost about 15 µs, an
eighth of a cached answer. Two pieces make the common answer free:

- :class:`ChangeSignal`: an 8-byte file beside the database (``<database>-signal``),
  memory-mapped by every process. After each committed batch, and before the API
  acknowledges it, the writer stores a fresh random token there. A reader compares
  it with the token it saw last: reading 8 mapped bytes costs well under a microsecond.
- :class:`CustomersWithEvents`: each process's set of customers with events newer
  than the served model, of customers who said "not interested", and of erased
  customers. When the token has changed, only the rows past the newest ones already
  read are fetched.

Why a random token rather than a counter or the last event id: writers in different
processes commit one after another but store their signals in any order, and a
read-modify-write counter could lose a bump. A fresh random value can never turn back
into the value a reader holds, so once a writer has stored its token every reader
sees a change. (A torn read gives some other value: one needless refresh.)

Every write must go through :class:`recommender.events.EventStore` (events, erasures). A row inserted
by hand with SQL is stored, and training reads it, but serving does not see it until a
later event for any customer arrives or the worker restarts. A database file deleted or
replaced while serving is followed (every connection moves to the file at the path, and
the set is read again), but restoring a backup into the live file needs a restart: ids
then start again below those already read, which a refresh notices only while they are
still below.
"""

from __future__ import annotations

import logging
import mmap
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .records import customer_key

log = logging.getLogger(__name__)


class ChangeSignal:
    """The shared token at ``path``; ``read()`` is None when the file cannot be used,
    and then every lookup falls back to asking the database."""

    SIZE = 8
    # How often a reader checks that the file is still the one on disk. An fstat costs a
    # microsecond or more on a virtual machine, and a read happens on every request.
    RECHECK_SECONDS = 0.05

    def __init__(self, path):
        self.path = Path(path)
        self._view: memoryview | None = None
        self._descriptor: int | None = None  # kept open to notice the file being deleted or replaced
        self._pid: int | None = None
        self._checked_until = 0.0
        self._failure_logged = False
        self._lock, self._lock_pid = threading.Lock(), os.getpid()

    def _mapped(self, check_now: bool) -> memoryview | None:
        view = self._view
        if view is not None and not check_now and self._pid == os.getpid() and time.monotonic() < self._checked_until:
            return view
        if self._lock_pid != os.getpid():  # a lock held by another thread at a fork stays held in the child
            self._lock, self._lock_pid = threading.Lock(), os.getpid()
        # One thread at a time past this point: two threads remapping at once would close
        # one descriptor twice, the second time perhaps a file another thread has just opened.
        with self._lock:
            return self._checked_or_mapped_again()

    def _checked_or_mapped_again(self) -> memoryview | None:
        if self._view is not None and self._pid == os.getpid():
            now = time.monotonic()
            # A file deleted or replaced while we serve (a clean-up, a deploy) would leave this
            # process writing and reading a token nobody else sees: writers check before each
            # write, readers every RECHECK_SECONDS. (A file truncated by hand under a reader's
            # mapping can still crash it before then; the restarted worker grows the file again.)
            try:
                status = os.fstat(self._descriptor)
                still_ours = status.st_nlink > 0 and status.st_size >= self.SIZE
            except OSError:  # the descriptor closed under us: map the file again
                still_ours = False
            if still_ours:
                self._checked_until = now + self.RECHECK_SECONDS
                return self._view
            log.warning("%s was deleted, replaced or truncated: mapping it again", self.path)
            self._forget()
        if self._pid != os.getpid():  # a fork must not reuse the parent's mapping
            self._forget()
            self._pid, self._failure_logged = os.getpid(), False
        # Tried again on every call while it fails (an os.open each time): a writer that gave up
        # for good after one passing failure would leave other processes blind to its events.
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)  # a store's first use creates its folder
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if os.fstat(descriptor).st_size < self.SIZE:
                    os.ftruncate(descriptor, self.SIZE)  # only grows: never clears a token another process wrote
                self._view = memoryview(mmap.mmap(descriptor, self.SIZE)).cast("q")
            except BaseException:
                os.close(descriptor)
                raise
            self._descriptor = descriptor
        except (OSError, ValueError) as error:
            if not self._failure_logged:
                self._failure_logged = True
                log.error("%s cannot be used (%s): this process reads every customer's events from the database "
                          "and refuses to store events until it can", self.path, error)
        return self._view

    def __del__(self):
        if self._pid == os.getpid():  # a forked child's copy is the child's to close
            self._forget()

    def _forget(self) -> None:
        """Drop the mapping and its descriptor (in a forked child, the copies it inherited)."""
        if self._descriptor is not None:
            try:
                os.close(self._descriptor)
            except OSError:
                pass
        self._view = self._descriptor = None

    def read(self) -> int | None:
        view = self._mapped(check_now=False)
        return None if view is None else view[0]

    def writable(self) -> bool:
        """Whether :meth:`announce` can reach the other processes now."""
        return self._mapped(check_now=True) is not None

    def announce(self) -> bool:
        """Tell every process that events were committed (call after COMMIT); False when
        the file cannot be used (:meth:`EventStore.add` checks that before it stores)."""
        view = self._mapped(check_now=True)
        if view is None:
            return False
        view[0] = secrets.randbits(63)
        return True


class CustomersWithEvents:
    """One process's view of which customers the store may hold something for.

    Three answers, each kept up to date by reading only what was written since the
    signal last changed:
    - customers with events newer than a cut-off id (the served model's);
    - customers who ever said "not interested" (honoured whatever the model's age);
    - erased customers, by key, with the id of their latest erasure.

    The first two sets may hold more than needed (after a newer model raised the cut-off,
    or after an erasure deleted the events), never less: a customer outside them has no
    such events, one inside is asked of the database as before.
    """

    def __init__(self, signal: ChangeSignal):
        self.signal = signal
        self._lock = threading.Lock()
        self._customers: set[str] = set()
        self._rejecting: set[str] = set()
        self._erased: dict[str, int] = {}  # customer key -> latest erasure id
        self._cut_off: int | None = None  # the after_id the set starts from
        self._read_through = 0  # the newest event id already in the sets
        self._erasures_read_through = 0
        self._token: int | None = None  # the signal's value when the sets were last brought up to date
        self._database: object = None  # which database file the sets were read from
        self._pid: int | None = None

    def may_have_events(self, customer_id: str, after_id: int, connect: Callable[[], tuple[sqlite3.Connection, object]]) -> bool:
        """False when the customer surely has no event with an id above ``after_id``.
        ``connect`` gives this thread's connection and which database file it reads (any
        value that changes when the file at the path is replaced); it is only called to
        read new events."""
        return self.look_up(customer_id, after_id, connect)[0]

    def look_up(
        self, customer_id: str, after_id: int, connect: Callable[[], tuple[sqlite3.Connection, object]]
    ) -> tuple[bool, bool, int]:
        """(may have events above ``after_id``, may have said "not interested", id of their
        latest erasure or 0). Without a usable signal every answer is "ask the database"."""
        token = self.signal.read()  # read before the database, so a write in between is seen next time
        if token is None:
            return True, True, self._erasure_in_database(customer_id, connect)
        if token != self._token or self._cut_off is None or after_id < self._cut_off or self._pid != os.getpid():
            self._bring_up_to_date(token, after_id, *connect())
        erased = self._erased
        return customer_id in self._customers, customer_id in self._rejecting, erased.get(customer_key(customer_id), 0) if erased else 0

    @staticmethod
    def _erasure_in_database(customer_id: str, connect) -> int:
        connection, _ = connect()
        row = connection.execute("SELECT MAX(id) FROM erasures WHERE customer_key = ?", (customer_key(customer_id),)).fetchone()
        return row[0] or 0

    def _bring_up_to_date(self, token: int, after_id: int, connection: sqlite3.Connection, database: object) -> None:
        with self._lock:
            # Ids only ever grow (AUTOINCREMENT), unless the database was replaced: a new file at
            # the path, or a backup restored into this one. Either way ids start again, and the
            # sets must be read again; a restore is noticed only while ids are below those read.
            # (An erasure that deleted the newest events looks the same: one needless rebuild.)
            newest = connection.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
            replaced = database != self._database or newest < self._read_through
            if self._pid != os.getpid() or self._cut_off is None or after_id < self._cut_off or replaced:
                # Built aside and swapped in whole: a thread reading meanwhile sees the old sets,
                # and the old token and cut-off send it here to wait for the lock.
                customers, cut_off, read_through = set(), after_id, after_id
                rejecting = {c for (c,) in connection.execute("SELECT DISTINCT customer_id FROM events WHERE event_type = 'not_interested'")}
                erased, erasures_read_through = {}, 0
            else:
                customers, cut_off, read_through = self._customers, self._cut_off, self._read_through
                rejecting, erased, erasures_read_through = self._rejecting, self._erased, self._erasures_read_through
            rows = connection.execute("SELECT id, customer_id, event_type FROM events WHERE id > ? ORDER BY id", (read_through,)).fetchall()
            if rows:
                # Only ever adds: safe to do in place while other threads read.
                customers.update(customer for _, customer, _ in rows)
                rejecting.update(customer for _, customer, kind in rows if kind == "not_interested")
                read_through = rows[-1][0]
            erasures = connection.execute("SELECT id, customer_key FROM erasures WHERE id > ? ORDER BY id", (erasures_read_through,)).fetchall()
            if erasures:
                erased = {**erased, **{key: erasure_id for erasure_id, key in erasures}}  # a new dict: readers hold the old one
                erasures_read_through = erasures[-1][0]
            self._customers, self._rejecting, self._erased = customers, rejecting, erased
            self._read_through, self._erasures_read_through, self._cut_off, self._pid = read_through, erasures_read_through, cut_off, os.getpid()
            self._database = database
            self._token = token  # last: until now, readers holding this token were sent to wait here
