"""Top-list answers kept encoded, so the storefront's usual request builds no answer at all.

A plain request (``GET /v1/customers/<id>/recommendations``, at most ``n``, no filter) for a
training customer with no feedback since the model is answered from the top lists: the same
items, scores, names and reasons every time until the model changes. Building those ten
items as objects and encoding them was about half of the request's CPU in a worker
(docs/benchmarks.md, "Serving", 2026-12-04 evening), and a stored body served by the same
HTTP server costs no more than ``/health``. So the first such answer is encoded once and
kept; later ones reuse its JSON (an ``orjson.Fragment``), with a fresh recommendation id,
experiment and variant around it, and the answer log still gets every answer's item ids.

What is kept is keyed by everything the answer depends on: the model's version (a promoted
model never serves its predecessor's answers), the customer, ``n`` and whether reasons are
shown. Any feedback (a new event, a "not interested", an erasure) sends the request down the
ordinary path, and only answers that came from the top lists (``origin == top_lists``) are
kept: a live answer depends on the events, and is remembered by the model instead.

Entries are plain tuples of strings and bytes, which the garbage collector stops tracking,
so a full store adds nothing to a collection's pause (see :mod:`recommender.topn.remembered`).
The store is bounded by the bytes it holds (``PREPARED_ANSWERS_MB`` per worker; 0 turns it
off), least recently used first out (:class:`recommender.topn.lru.BoundedLRU`, as the live
answers the model remembers).
"""

from __future__ import annotations

from collections.abc import Callable

from recommender.model import Model
from recommender.topn import RecommendationList
from recommender.topn.answers import TOP_LISTS
from recommender.topn.lru import BoundedLRU

# (source, origin, item ids, the items' JSON): how an answer is kept and handed on.
Prepared = tuple[str, str, tuple[str, ...], bytes]
# Per kept answer beyond its JSON: the key, the tuple and the dict's slot (measured with
# tracemalloc over 20,000 Gowalla answers: 1.8 kB of JSON and about 0.4 kB around it).
_OVERHEAD_BYTES = 400


class PreparedAnswers:
    """An LRU of encoded top-list answers, bounded by ``max_bytes``; ``encode`` turns a list
    of :class:`~recommender.topn.Recommendation` into the JSON the API would send;
    ``on_encoded`` is told of every answer encoded and kept (a metric)."""

    def __init__(self, max_bytes: int, encode: Callable[[list], bytes], on_encoded: Callable[[], None] | None = None):
        self._encode = encode
        self._on_encoded = on_encoded
        self._kept = BoundedLRU(max_bytes, _weight)

    def answer(self, model: Model, customer_id: str, n: int, with_reasons: bool) -> Prepared | RecommendationList:
        """The plain answer for a customer with no feedback: kept, or made now (and kept when
        it came from the top lists)."""
        key = (model.version, customer_id, n, with_reasons)
        found = self._kept.get(key)
        if found is not None:
            return found
        result = model.recommend(customer_id, n, with_reasons=with_reasons)
        if result.origin != TOP_LISTS or not self.max_bytes:
            return result
        prepared = (result.source, result.origin, tuple([item.item_id for item in result.items]), self._encode(result.items))
        self._kept.put(key, prepared)
        if self._on_encoded is not None:
            self._on_encoded()
        return prepared

    def forget(self, customer_id: str) -> int:
        """Drop the customer's kept answers (an erasure); returns how many."""
        return self._kept.forget(lambda key: key[1] == customer_id)

    @property
    def max_bytes(self) -> int:
        return self._kept.bound

    @property
    def encoded(self) -> int:
        """Answers encoded and kept since the start (the misses)."""
        return self._kept.added

    @property
    def kept(self) -> int:
        return len(self._kept)

    @property
    def bytes_kept(self) -> int:
        return self._kept.total


def _weight(prepared: Prepared) -> int:
    return len(prepared[3]) + _OVERHEAD_BYTES
