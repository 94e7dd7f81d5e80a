"""The erasure list as this worker last read it, for the moments the event store cannot be read.

Every answer asks the store whether its customer was erased after the served model learned
them (:func:`serving.state.customer_feedback`). While the store is down that question has no
answer, and answering "from the model alone" would put an erased customer's training
history back into their answers: the model may predate the erasure. So each worker keeps the
list it last read, brought up to date every ``refresh_seconds`` by a background thread, and
during an outage a customer on it is answered without their training history, as when the
store is up. The list misses the erasures committed in the last ``refresh_seconds`` before
this worker lost the store, and, where only this host lost it (other hosts or ``recommender
forget`` still reach the database), those committed meanwhile: no erasure can be made
through this worker (its DELETE answers 503). A worker that has never read the list (the
store down since it started) cannot tell who was erased: it answers every customer without
training history until it has read it. A store replaced or restored from a backup (ids
start again) is read whole again.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable

from recommender.events import NO_FEEDBACK, CustomerFeedback, customer_key

log = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0
# The erasure id given to every customer while the list was never read: above any real id, so
# the customer counts as erased after whatever model is served (recommender.model.erased_since).
NEVER_READ = 2**63 - 1


class KnownErasures:
    """``read(after_id)`` gives the store's erasures after an id: (erasure id, customer key,
    erased at), oldest first (:meth:`recommender.events.EventStore.erasures`)."""

    def __init__(self, read: Callable[[int], list[tuple[int, str, int]]], refresh_seconds: float = REFRESH_SECONDS):
        self._read = read
        self.refresh_seconds = refresh_seconds
        self._latest: dict[str, int] | None = None  # customer key -> latest erasure id; None: never read
        self._through = 0  # the newest erasure id read...
        self._through_key = ""  # ...and its customer key: a store replaced since no longer has that row
        self._closed = False
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._start()
        reference = weakref.ref(self)
        # The thread does not follow a fork: a worker forked from a process that built the app starts its own.
        os.register_at_fork(after_in_child=lambda: (alive := reference()) is not None and not alive._closed and alive._start())

    def _start(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        threading.Thread(target=_refresh_forever, args=(weakref.ref(self), self._stopping), name="erasure-list", daemon=True).start()

    def refresh(self) -> None:
        """Read the erasures committed since the last read (the whole list the first time, and
        when the row last read is gone or another: the store was replaced or restored)."""
        with self._lock:
            rows = self._read(max(self._through - 1, 0))  # from the row last read, to check it is still there
            latest = self._latest
            if latest is not None and self._through and rows[:1] and rows[0][:2] == (self._through, self._through_key):
                rows = rows[1:]
            elif latest is not None and self._through:
                rows, latest = self._read(0), None
                self._through, self._through_key = 0, ""  # read whole: an empty store must not keep the old mark
            if latest is None:
                latest = {}
            for erasure_id, key, _ in rows:
                latest[key] = erasure_id  # in place: a reader's get() sees the old value or the new one
            if rows:
                self._through, self._through_key = rows[-1][0], rows[-1][1]
            self._latest = latest

    def refresh_if_readable(self) -> KnownErasures:
        """:meth:`refresh`, or the list as last read when the store cannot be read (a page
        that lists customers must leave out those erased a moment ago)."""
        try:
            self.refresh()
        except sqlite3.Error:  # EventStoreUnavailable is one
            pass
        return self

    def during_outage(self, customer_id: str) -> CustomerFeedback:
        """What serving knows of the customer while the store cannot be read: no events and
        no "not interested" answers (they apply again once it can), and their latest erasure."""
        latest = self._latest
        if latest is None:
            return CustomerFeedback([], [], NEVER_READ)
        erasure_id = latest.get(customer_key(customer_id), 0)
        return CustomerFeedback([], [], erasure_id) if erasure_id else NO_FEEDBACK

    def erased_after(self, customer_id: str, erasures_through: int) -> bool:
        """Whether the customer was erased after a model that read the list up to
        ``erasures_through`` (True while the list was never read: nobody can be vouched for)."""
        latest = self._latest
        return latest is None or latest.get(customer_key(customer_id), 0) > erasures_through

    def close(self) -> None:
        self._closed = True
        self._stopping.set()


def _refresh_forever(reference, stopping: threading.Event) -> None:
    """The background reader; ends when the list is garbage collected or closed."""
    while True:
        erasures = reference()
        if erasures is None:
            return
        try:
            erasures.refresh()
        except sqlite3.Error as error:  # the store is down (EventStoreUnavailable is one): keep the list as read
            log.warning("erasure list not refreshed: %s", error)
        except Exception:  # never let the thread die: the next round tries again
            log.exception("erasure list not refreshed")
        seconds = erasures.refresh_seconds
        del erasures
        if stopping.wait(seconds):
            return
