"""The top-N path, one small step per module (LensKit's pipeline, Gorse's fallback chain):

    history -> candidates -> scores -> filters -> top-N -> top-up -> reasons

- :mod:`.history`: a customer's training purchases plus their newer events, as a row;
- :mod:`.candidates`: the items a request allows (include, exclude, category);
- :mod:`.path`: scores, filters, top-N and the popular top-up, for any number of rows;
- :mod:`.popular`: the fallback and top-up;
- :mod:`.top_lists`: the answers computed at training for customers with nothing new;
- :mod:`.remembered`: live answers kept until the customer's next event;
- :mod:`.lru`: the LRU bounded by weight that kept answers live in;
- :mod:`.reasons` and :mod:`.answers`: the purchases behind each item, and the answer
  in the customer's terms.
"""

from .answers import (
    PERSONALISED,
    POPULAR,
    REMEMBERED,
    SCORED,
    TOP_LISTS,
    Labels,
    Recommendation,
    RecommendationList,
    answer_source,
)
from .candidates import candidate_mask
from .history import history_row, history_rows, known_events
from .path import Ranked, drop_unsupported, rank_rows
from .popular import PopularItems
from .reasons import REASONS_PER_ITEM
from .remembered import RememberedAnswers
from .top_lists import TopLists, compute_top_lists

__all__ = [
    "PERSONALISED",
    "POPULAR",
    "REASONS_PER_ITEM",
    "REMEMBERED",
    "SCORED",
    "TOP_LISTS",
    "Labels",
    "PopularItems",
    "Ranked",
    "Recommendation",
    "RecommendationList",
    "RememberedAnswers",
    "TopLists",
    "answer_source",
    "candidate_mask",
    "compute_top_lists",
    "drop_unsupported",
    "history_row",
    "history_rows",
    "known_events",
    "rank_rows",
]
