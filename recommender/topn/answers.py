"""What a top-N answer holds in the customer's terms, and how an item index becomes one line of it."""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field

import numpy as np

from ..catalog import Catalog
from ..vocabulary import IdVocabulary
from .reasons import POPULAR_REASON, because_sentence

PERSONALISED = "personalised"
POPULAR = "popular"

# Where an answer came from, for the operators' metrics: the top lists computed at training,
# scored for this request, or a live answer kept from the customer's previous request.
TOP_LISTS = "top_lists"
SCORED = "scored"
REMEMBERED = "remembered"


@dataclass  # not slots: orjson encodes a __dict__ dataclass about 4x faster
class Recommendation:
    item_id: str
    score: float
    name: str
    category: str = ""
    reason: str = ""
    because: list[str] = field(default_factory=list)
    position: int = 0  # 1-based place in its answer (0: not placed in a list)

    def to_dict(self) -> dict:
        return asdict(self)


def answer_source(personalised: bool, topped_up: np.ndarray) -> str:
    """PERSONALISED when the algorithm scored the history and placed at least one item, or
    when the request's filters left no item at all (the history was scored; an empty answer
    is no popular one, and must not be counted as one); POPULAR when every item is a popular
    one (nothing the customer bought points anywhere)."""
    return PERSONALISED if personalised and (not len(topped_up) or not topped_up.all()) else POPULAR


@dataclass
class RecommendationList:
    customer_id: str
    source: str  # PERSONALISED or POPULAR
    items: list[Recommendation]
    origin: str = SCORED  # TOP_LISTS, SCORED or REMEMBERED


class Labels:
    """Item ids, names and categories as Python lists, built once per model: indexing numpy
    string arrays item by item costs more than the rest of a cached answer."""

    def __init__(self, items: IdVocabulary, catalog: Catalog):
        self._items, self._catalog = items, catalog

    @functools.cached_property
    def lists(self) -> tuple[list[str], list[str], list[str]]:
        return self._items.ids.tolist(), self._catalog.names.tolist(), self._catalog.categories.tolist()

    def item(self, index: int, score: float, because: list[int], position: int = 0, *, popular: bool = False, reason: str | None = None,
             viewed: frozenset[int] | None = None) -> Recommendation:
        """One recommended item at ``position`` (1-based) of its answer; ``because`` holds the
        indices of the purchases behind it, ``viewed`` those of the customer's items that were
        only viewed (or carted, or clicked), never bought."""
        ids, names, categories = self.lists
        if reason is None:
            reason = POPULAR_REASON if popular and not because else because_sentence(names, because, viewed)
        because_ids = [ids[because[0]], ids[because[1]]] if len(because) == 2 else [ids[j] for j in because]
        return Recommendation(ids[index], score, names[index], categories[index], reason, because_ids, position)

    def unknown_item(self, item_id: str, position: int = 0) -> Recommendation:
        """A candidate the model has never seen (ranked last by ``rank``)."""
        return Recommendation(item_id, float("nan"), item_id, "", "unknown to the current model", [], position)
