"""Live answers kept for the customer's next request, bounded by the items they list.

A customer with events newer than the model is scored live (milliseconds, not the
microseconds of a top list). Until their next event, every page they open asks the same
question, so the answer is kept under a key holding every input, the new events
included: an event makes a new key, never a stale answer.

The bound counts listed items, not answers, because an answer's memory grows with its
length (n=10 is about 3 KB with reasons, n=100 ten times that): a count of answers would
be either small for the storefront's pages or unbounded for long lists.

Answers are kept as tuples of strings and numbers, and made objects again when asked:
CPython's garbage collector stops tracking such tuples, while every object of a kept
answer would be walked by each full collection. 10,000 answers of ten items kept as
objects made a full collection take 91 ms (a stall of every request behind it); as
tuples, 0.4 ms.
"""

from __future__ import annotations

from collections.abc import Callable

from .answers import REMEMBERED, Recommendation, RecommendationList
from .lru import BoundedLRU

# About 310 bytes per listed item with its reasons and key (tracemalloc, 2,000 ten-item
# answers of Gowalla's ALS model): 100,000 items are about 31 MB per model and server
# worker, 10,000 answers of ten items.
ITEMS_KEPT = 100_000


class RememberedAnswers:
    """``score(*key)`` behind a thread-safe LRU of answers holding at most ``items_kept``
    listed items in all; the least recently asked answers go first. Keys begin with the
    customer id (:meth:`forget`)."""

    def __init__(self, score: Callable[..., RecommendationList], items_kept: int = ITEMS_KEPT):
        self._score = score
        self._kept = BoundedLRU(items_kept, listed)

    def __call__(self, *key) -> RecommendationList:
        """The answer; its ``origin`` is REMEMBERED when it was kept from an earlier request."""
        packed = self._kept.get(key)
        if packed is not None:
            return unpacked(packed)
        # Scored outside the lock: another thread may score the same key meanwhile (the
        # same answer, kept once), but never waits behind someone else's scoring.
        answer = self._score(*key)
        self._kept.put(key, packed_answer(answer))
        return answer

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def items_kept(self) -> int:
        return self._kept.bound

    @property
    def items(self) -> int:
        """Listed items kept now."""
        return self._kept.total

    @property
    def hits(self) -> int:
        return self._kept.hits

    @property
    def misses(self) -> int:
        return self._kept.misses

    def kept_answers(self) -> list[tuple]:
        """The packed answers kept now (for tests of the bound)."""
        return self._kept.values()

    def forget(self, customer_id: str) -> int:
        """Drop the customer's answers (keys begin with the customer id); returns how many."""
        return self._kept.forget(lambda key: key[0] == customer_id)

    def cache_clear(self) -> None:
        self._kept.clear()


def packed_answer(answer: RecommendationList) -> tuple:
    """The answer as nested tuples of strings and numbers (untracked by the collector)."""
    items = tuple((r.item_id, r.score, r.name, r.category, r.reason, tuple(r.because), r.position) for r in answer.items)
    return answer.customer_id, answer.source, items


def listed(packed: tuple) -> int:
    """What a packed answer counts against the bound: its items (an empty answer as one)."""
    return max(len(packed[2]), 1)


def unpacked(packed: tuple) -> RecommendationList:
    customer_id, source, items = packed
    answer = [Recommendation(item_id, score, name, category, reason, list(because), position)
              for item_id, score, name, category, reason, because, position in items]
    return RecommendationList(customer_id, source, answer, REMEMBERED)
