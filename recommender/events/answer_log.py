"""Logging every answer without slowing it: ids made in-process, rows written in batches.

A request only takes an id (:class:`AnswerIds`, a counter behind a random per-process
prefix: well under a microsecond) and appends one tuple to an in-memory buffer
(:class:`AnswerLog`). A background thread writes the buffer to the event store every
``flush_seconds`` (default 0.2 s) in one transaction. The price is a loss window: if a
worker is killed (``kill -9``, a crash, a power cut) the answers of its last
``flush_seconds`` are not logged, and events that respond to them are counted as
unattributed. A normal stop (SIGTERM, the end of a process) flushes first.
Events themselves are never buffered: they are on disk before they are acknowledged.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import logging
import multiprocessing.util
import os
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Sequence

from .records import AnswerRecord

log = logging.getLogger(__name__)


class AnswerIds:
    """Unique, opaque answer ids: 16 random hex digits per process (a new prefix after a
    fork or a restart), a dash, and a counter in hex. Two processes collide only if their
    64-bit random prefixes do."""

    def __init__(self):
        self._restart()
        _after_fork(self, AnswerIds._restart)

    def _restart(self) -> None:
        self._prefix, self._counter = secrets.token_hex(8) + "-", itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):x}"


def _after_fork(owner, reset: Callable) -> None:
    """Call ``reset(owner)`` in a forked child while ``owner`` lives: a check of the pid on
    every request would cost a system call each time."""
    reference = weakref.ref(owner)

    def in_child() -> None:
        alive = reference()
        if alive is not None:
            reset(alive)

    os.register_at_fork(after_in_child=in_child)


class AnswerLog:
    """A buffer of answers waiting to be logged, and the thread that writes it.

    ``write`` takes a list of :class:`AnswerRecord` (the event store's ``add_answers``).
    The buffer holds at most ``capacity`` rows: when the store cannot keep up (or is
    down) further answers are not logged and ``dropped`` counts them, rather than the
    worker growing without bound.
    """

    def __init__(self, write: Callable[[Sequence[AnswerRecord]], int], *, flush_seconds: float = 0.2, capacity: int = 100_000,
                 on_dropped: Callable[[int], None] | None = None):
        self._write = write
        self._on_dropped = on_dropped
        self.flush_seconds = flush_seconds
        self.capacity = capacity
        self._buffer: collections.deque = collections.deque()
        self._flush_lock = threading.Lock()
        self._started = False
        self._stopping = threading.Event()
        self.dropped = 0
        self.written = 0
        _after_fork(self, AnswerLog._forget_parent)

    def _forget_parent(self) -> None:
        """In a forked child: the parent's thread is not here, and its answers are its own."""
        self._buffer.clear()
        self._flush_lock = threading.Lock()
        self._started = False

    def record(self, recommendation_id: str, customer_id: str | None, endpoint: str, experiment: str | None,
               variant: str | None, model_version: str, item_ids: tuple[str, ...]) -> None:
        """Queue one answer (``item_ids``: the listed items' ids, in order). The hot path:
        one tuple of strings and numbers, appended. Only the ids are kept, not the answer's
        objects: objects held until the flush outlive the garbage collector's youngest
        generation, and every collection then walks them (that slowed every request by a
        quarter in a first version)."""
        if not self._started:
            self._start()
        if len(self._buffer) >= self.capacity:
            self._drop(1)
            return
        self._buffer.append((recommendation_id, customer_id, endpoint, experiment, variant, model_version, item_ids, int(time.time())))

    def flush(self) -> int:
        """Write what is buffered now, in one transaction; returns how many rows. Rows that
        cannot be written (store unavailable) are dropped and logged, not retried forever."""
        with self._flush_lock:
            taken = []
            buffer = self._buffer
            while buffer:
                taken.append(buffer.popleft())
            if not taken:
                return 0
            records = [AnswerRecord._make(row) for row in taken]
            try:
                self._write(records)
            except Exception as error:
                self._drop(len(records))
                log.error("could not log %d answers (%s); events responding to them will count as unattributed", len(records), error)
                return 0
            self.written += len(records)
            return len(records)

    def _drop(self, count: int) -> None:
        self.dropped += count
        if self._on_dropped is not None:
            self._on_dropped(count)

    def _start(self) -> None:
        """Start the flushing thread in this process (after a fork the parent's is gone)."""
        self._started = True
        self._stopping = threading.Event()
        thread = threading.Thread(target=_flush_forever, args=(weakref.ref(self), self._stopping), name="answer-log", daemon=True)
        thread.start()
        # A normal exit writes what is left: atexit in a process of its own or forked by
        # gunicorn; multiprocessing's finalisers in a multiprocessing child (a granian
        # worker), which does not run atexit. A second flush finds nothing to write.
        atexit.register(_flush_at_exit, weakref.ref(self))
        multiprocessing.util.Finalize(None, _flush_at_exit, args=(weakref.ref(self),), exitpriority=20)

    def close(self) -> None:
        """Stop the thread and write what is left."""
        self._stopping.set()
        self.flush()


def _flush_forever(log_reference, stopping: threading.Event) -> None:
    """The background writer; ends when the log is garbage collected or closed."""
    while True:
        answer_log = log_reference()
        if answer_log is None:
            return
        interval = answer_log.flush_seconds
        try:
            answer_log.flush()
        except Exception:  # never let the thread die: the next round tries again
            log.exception("answer log flush failed")
        del answer_log
        if stopping.wait(interval):
            return


def _flush_at_exit(log_reference) -> None:
    answer_log = log_reference()
    if answer_log is not None and answer_log._started:
        answer_log.flush()
