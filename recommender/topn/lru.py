"""A thread-safe LRU bounded by what its entries weigh, not by how many there are.

Both kinds of kept answers use it: live answers remembered until the customer's next event
(:mod:`.remembered`, weighed in listed items) and the server's encoded top-list answers
(``serving/prepared.py``, weighed in bytes). An answer's memory grows with its length, so a
count of entries would be either small for short answers or unbounded for long ones.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class BoundedLRU:
    """Entries of at most ``bound`` in all, each weighing ``weight(value)``; the least recently
    used go first. ``hits``, ``misses`` and ``added`` count :meth:`get` and :meth:`put`."""

    def __init__(self, bound: int, weight: Callable[[Any], int]):
        self.bound = bound
        self._weight = weight
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()
        self.hits = self.misses = self.added = 0

    def get(self, key: Hashable) -> Any | None:
        """The value kept under ``key`` (now the most recently used), or None."""
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: Any) -> None:
        """Keep ``value`` unless it alone weighs more than the bound, or another thread kept
        one under ``key`` meanwhile; older entries go until the total is within the bound."""
        weight = self._weight(value)
        if weight > self.bound:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = value
            self._total += weight
            self.added += 1
            while self._total > self.bound:
                self._total -= self._weight(self._entries.popitem(last=False)[1])

    def forget(self, matches: Callable[[Hashable], bool]) -> int:
        """Drop the entries whose key ``matches``; returns how many. A scan of every key: for
        an erasure, not for a request."""
        with self._lock:
            keys = [key for key in self._entries if matches(key)]
            for key in keys:
                self._total -= self._weight(self._entries.pop(key))
        return len(keys)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._total = 0

    def values(self) -> list:
        with self._lock:
            return list(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def total(self) -> int:
        """What the entries kept now weigh in all."""
        return self._total
