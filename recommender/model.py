"""A trained model in the customer's terms: external ids in, named items with reasons out.

The model bundles an algorithm with its id vocabularies, training history, catalog
and precomputed top lists, and answers one customer at a time through the top-N path
of :mod:`recommender.topn`; batch scoring and Spark run the same path on chunks.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from .algorithms import Algorithm, algorithm_class
from .catalog import Catalog
from .topn import (
    PERSONALISED,
    TOP_LISTS,
    Labels,
    PopularItems,
    Recommendation,
    RecommendationList,
    RememberedAnswers,
    TopLists,
    answer_source,
    candidate_mask,
    drop_unsupported,
    history_row,
    known_events,
    rank_rows,
)
from .topn.reasons import reasons_for_row, similar_sentence
from .vocabulary import IdVocabulary
from .weights import HistoryWeighting

if TYPE_CHECKING:
    from .events import CustomerFeedback


class Model:
    """An algorithm bundled with its vocabularies, training history, catalog and top lists."""

    def __init__(
        self,
        algorithm: Algorithm,
        customers: IdVocabulary,
        items: IdVocabulary,
        history: sp.csr_matrix,
        catalog: Catalog | None = None,
        manifest: dict | None = None,
        top_lists: TopLists | None = None,
        weighting: HistoryWeighting | None = None,
        browsed: sp.csr_matrix | None = None,
    ):
        if history.shape != (len(customers), len(items)):
            raise ValueError(f"history shape {history.shape} does not match vocabularies ({len(customers)}, {len(items)})")
        self.algorithm = algorithm
        self.customers = customers
        self.items = items
        self.history = history
        self.catalog = catalog if catalog is not None else Catalog.empty(items)
        self.manifest = manifest or {}
        self.top_lists = top_lists
        # How the history was weighted at training; new events are folded in the same way.
        self.weighting = weighting or HistoryWeighting()
        # Training history cells no purchase reached (views, clicks, carts): reasons say
        # "viewed" of them (:class:`recommender.interactions.Interactions`); None: all bought.
        self.browsed = browsed if browsed is not None and browsed.nnz else None
        self.popular = PopularItems(history)
        self.labels = Labels(items, self.catalog)

    @property
    def version(self) -> str:
        return self.manifest.get("version", "unsaved")

    @property
    def events_trained_through(self) -> int:
        """The newest event-store id this model was trained on (training records it), else 0.
        Answers fold in only newer events, so none counts twice."""
        data = self.manifest.get("data")
        value = data.get("events_through_id", 0) if isinstance(data, dict) else 0
        return value if isinstance(value, int) else 0

    @property
    def erasures_through(self) -> int:
        """The newest entry of the store's erasure list this model honours (training left
        those customers out, or ``recommender forget --rewrite-models`` removed them), else 0.
        Serving hides the training history of customers erased after it."""
        data = self.manifest.get("data")
        value = data.get("erasures_through", 0) if isinstance(data, dict) else 0
        return value if isinstance(value, int) else 0

    def history_row(self, customer_id: str, new_events: Iterable[tuple[str, float]] = (), *, training_history: bool = True) -> tuple[sp.csr_matrix, int]:
        """The customer's current history as a 1 x items row, and their training index
        (-1 when the customer is unknown or their history changed since training).
        ``training_history=False`` leaves out what the model learned of them (an erased customer)."""
        customer = self.customers.get(customer_id) if training_history else -1
        return history_row(self.history, customer, known_events(self.items, new_events), self.weighting)

    def recommend(
        self,
        customer_id: str,
        n: int = 10,
        *,
        new_events: Iterable[tuple[str, float]] = (),
        include: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        category: str | None = None,
        include_purchased: bool = False,
        with_reasons: bool = True,
        training_history: bool = True,
        viewed: Sequence[str] = (),
    ) -> RecommendationList:
        """Top-``n`` items for one customer; customers with no history get popular items.

        ``viewed``: the items of ``new_events`` that none of them bought (views, clicks,
        carts), which reasons call viewed rather than bought.
        ``exclude`` is also how items the customer said "not interested" in are left out;
        ``training_history=False`` answers as if the model had never seen the customer (an
        erased customer whose model still holds them). The answer is shared with later
        identical requests: treat it as read-only."""
        customer = self.customers.get(customer_id) if training_history else -1
        added = known_events(self.items, new_events)
        if customer >= 0 and not added and include is None and not include_purchased:
            # The common case: a training customer with nothing new, answered from the cache.
            cached = self._cached(customer_id, customer, n, candidate_mask(self.items, self.catalog, exclude=exclude, category=category), with_reasons)
            if cached is not None:
                return cached
        if added:
            # Scored live (milliseconds, not microseconds), so remembered: the same
            # customer asking again before their next event gets the same answer at once.
            return self._remembered_live_answers(
                customer_id, customer, tuple(added), n, None if include is None else tuple(include), tuple(exclude),
                category, include_purchased, with_reasons, tuple(viewed),
            )
        return self._live(customer_id, customer, (), n, include, exclude, category, include_purchased, with_reasons)

    def _cached(self, customer_id: str, customer: int, n: int, allowed: np.ndarray | None, with_reasons: bool) -> RecommendationList | None:
        """A training customer's answer from the top lists, reasons included; None when there
        are no lists (or no stored reasons while reasons are wanted), or when the filters
        leave too few cached items."""
        lists = self.top_lists
        if lists is None or (with_reasons and lists.reasons is None) or not self.algorithm.personalised:
            return None
        found = lists.head(customer, n, allowed, len(self.items))
        if found is None:
            return None
        places, indices, scores = found
        item = self.labels.item
        if not with_reasons:
            answer = [item(i, s, [], k) for k, (i, s) in enumerate(zip(indices, scores), 1)]
        else:
            viewed = self._viewed(customer) if self.browsed is not None else None
            answer = [item(i, s, because, k, viewed=viewed) for k, (i, s, because) in enumerate(zip(indices, scores, lists.reasons_at(customer, places)), 1)]
        if len(answer) >= n:
            return RecommendationList(customer_id, PERSONALISED, answer, TOP_LISTS)
        # A list cut short holds every item with evidence: popular items fill the rest.
        items, filled, topped_up = self._topped_up(self.history[customer], indices, scores, n, allowed)
        answer += [item(int(i), float(s), [], k, popular=True) for k, (i, s) in enumerate(zip(items[0], filled[0]), 1) if topped_up[0, k - 1]]
        return RecommendationList(customer_id, answer_source(True, topped_up[0][items[0] >= 0]), answer, TOP_LISTS)

    def _topped_up(self, row: sp.csr_matrix, indices: list[int], scores: list[float], n: int, allowed: np.ndarray | None):
        """A cached head as :func:`rank_rows` returns lists: (items, scores, topped-up slots),
        one row of width n, the popular top-up (:class:`PopularItems`) in the slots left."""
        width = min(n, len(self.items))
        items = np.full((1, width), -1, dtype=np.int64)
        filled = np.full((1, width), -np.inf, dtype=np.float32)
        items[0, : len(indices)], filled[0, : len(scores)] = indices, scores
        return items, filled, self.popular.fill(items, filled, row, allowed, skip_history=True)

    @functools.cached_property
    def _remembered_live_answers(self) -> RememberedAnswers:
        """:meth:`_live` behind a thread-safe LRU bounded by listed items. Every input is in
        the key, new events included, so an event makes a new key: never a stale answer."""
        return RememberedAnswers(self._live)

    def forget_live_answers(self, customer_id: str) -> int:
        """Drop the live answers remembered for the customer (an erasure); returns how many."""
        remembered = self.__dict__.get("_remembered_live_answers")  # not built: nothing kept
        return remembered.forget(customer_id) if remembered is not None else 0

    def viewed_in_training(self, customer: int) -> frozenset[int]:
        """The items of training customer ``customer``'s history that no purchase reached."""
        return self._viewed(customer)

    def _viewed(self, customer: int, added: Sequence[tuple[int, float]] = (), viewed_since: Sequence[str] = ()) -> frozenset[int]:
        """The items of the customer's history (training ``customer``, -1: none, plus the
        ``added`` events) that no purchase reached: training cells in :attr:`browsed` that no
        new event bought, and ``viewed_since`` items not bought in training."""
        browsed = self.browsed
        training_viewed = frozenset(browsed.indices[browsed.indptr[customer] : browsed.indptr[customer + 1]].tolist()) \
            if customer >= 0 and browsed is not None and browsed.indptr[customer] != browsed.indptr[customer + 1] else frozenset()
        if not viewed_since:
            return training_viewed - {item for item, _ in added}
        new_views = frozenset(index for index in self.items.lookup(list(viewed_since)).tolist() if index >= 0)
        trained = self.history.indices[self.history.indptr[customer] : self.history.indptr[customer + 1]].tolist() if customer >= 0 else []
        bought_since = {item for item, _ in added} - new_views
        return (training_viewed - bought_since) | (new_views - (frozenset(trained) - training_viewed))

    def _live(self, customer_id, customer, added, n, include, exclude, category, include_purchased, with_reasons, viewed_since=()) -> RecommendationList:
        viewed = self._viewed(customer, added, viewed_since) if with_reasons else frozenset()
        row, customer = history_row(self.history, customer, list(added), self.weighting)
        allowed = candidate_mask(self.items, self.catalog, include=include, exclude=exclude, category=category)
        cached = None
        if row.nnz and include is None and not include_purchased and self.algorithm.personalised and self.top_lists is not None and customer >= 0:
            cached = self.top_lists.head(customer, n, allowed, len(self.items))  # reasons missing from the cache: explained here
        if cached is not None:
            items, scores, topped_up = self._topped_up(row, cached[1], cached[2], n, allowed)
            personalised = True
        else:
            ranked = rank_rows(self.algorithm, self.popular, row, np.array([customer]), n, allowed=allowed, exclude_purchased=not include_purchased)
            items, scores, personalised, topped_up = ranked.items, ranked.scores, bool(ranked.personalised[0]), ranked.topped_up
        listed = items[0] >= 0
        indices, scores, popular = items[0][listed], scores[0][listed], topped_up[0][listed]
        source = answer_source(personalised, popular)
        personalised = source == PERSONALISED
        scored = indices[~popular]
        reasons = iter(reasons_for_row(self.algorithm, row, customer, scored) if with_reasons and personalised else [[] for _ in scored])
        answer = [
            self.labels.item(int(i), float(s), [] if from_popular else next(reasons), k, popular=bool(from_popular), viewed=viewed)
            for k, (i, s, from_popular) in enumerate(zip(indices, scores, popular), 1)
        ]
        return RecommendationList(customer_id, source, answer)

    def rank(
        self, customer_id: str, item_ids: Sequence[str], *, new_events: Iterable[tuple[str, float]] = (),
        exclude: Sequence[str] = (), training_history: bool = True, viewed: Sequence[str] = (),
    ) -> RecommendationList:
        """The given candidates ordered best first for this customer; unknown items last.
        Candidates in ``exclude`` (items the customer said "not interested" in) are left out;
        ``viewed`` as for :meth:`recommend`."""
        customer = self.customers.get(customer_id) if training_history else -1
        added = known_events(self.items, new_events)
        viewed_items = self._viewed(customer, added, viewed)
        row, customer = history_row(self.history, customer, added, self.weighting)
        item_ids = list(dict.fromkeys(item_ids))  # a candidate listed twice is ranked once, where it first appears
        if exclude:
            left_out = set(exclude)
            item_ids = [item_id for item_id in item_ids if item_id not in left_out]
        known = self.items.lookup(item_ids)
        listed = np.flatnonzero(known >= 0)
        personal = row.nnz > 0 and self.algorithm.personalised
        buyers = self.popular.buyers[known[listed]]
        scores = np.asarray(self.algorithm.candidate_scores(row, np.array([customer]), known[listed]))[0] if personal else buyers
        # Best first. Candidates nothing bought points to (score 0) are popular items, as in the
        # top-N path's top-up: after those with evidence for them, before those with evidence
        # against, by popularity among themselves; other equal scores keep the given order.
        unsupported = (scores == 0) if personal else np.ones(len(listed), dtype=bool)
        popularity = np.where(unsupported, buyers, 0.0)
        order = np.lexsort((listed, -popularity, -scores)) if len(listed) else np.zeros(0, dtype=np.int64)
        reasons = reasons_for_row(self.algorithm, row, customer, known[listed[order]]) if personal else [[] for _ in order]
        shown = np.where(unsupported, buyers, scores)  # a popular item's score: its buyers, as in top-ups
        items = [
            self.labels.item(int(known[listed[k]]), float(shown[k]), [] if unsupported[k] else because, place, popular=bool(unsupported[k]),
                             viewed=viewed_items)
            for place, (k, because) in enumerate(zip(order.tolist(), reasons), 1)
        ]
        items += [self.labels.unknown_item(item_ids[k], len(items) + place) for place, k in enumerate(np.flatnonzero(known < 0).tolist(), 1)]
        # Candidates all unknown to the model: nothing was scored, so the answer is not a personalised one.
        scored = personal and (len(listed) > 0 or not items)
        return RecommendationList(customer_id, answer_source(scored, unsupported), items)

    def similar_items(self, item_id: str, n: int = 10, *, exclude: Sequence[str] = ()) -> list[Recommendation]:
        """Customers who bought ``item_id`` also bought these (raises UnknownIdError), less
        the items in ``exclude``."""
        item = self.items.index(item_id)
        left_out = set(self.items.lookup(exclude).tolist()) if exclude else set()
        indices, scores = drop_unsupported(*self.algorithm.similar_items(np.array([item]), n + len(left_out)))
        reason = similar_sentence(self.labels.lists[1][item])
        kept = [(int(i), float(s)) for i, s in zip(indices[0], scores[0]) if i >= 0 and i not in left_out][:n]
        answer = [self.labels.item(i, s, [], k, reason=reason) for k, (i, s) in enumerate(kept, 1)]
        if len(answer) < n:  # too few items were ever bought with it: popular ones fill the rest
            skip = np.array([item, *left_out, *(i for i, _ in kept)], dtype=np.int64)
            extra = self.popular.top(n - len(answer), None, skip)
            answer += [self.labels.item(int(i), float(self.popular.buyers[i]), [], len(answer) + k, popular=True) for k, i in enumerate(extra, 1)]
        return answer

    def popular_baseline(self) -> Model:
        """This model's popular items as a model of their own, answering through the same
        top-N path (the control of an experiment): the same vocabularies, history and
        catalog, shared rather than copied, and a popularity algorithm."""
        algorithm = algorithm_class("popular").from_arrays({}, {"popularity": self.popular.buyers}, len(self.items))
        manifest = {**self.manifest, "version": f"popular+{self.version}", "algorithm": algorithm.name}
        return Model(algorithm, self.customers, self.items, self.history, self.catalog, manifest, weighting=self.weighting, browsed=self.browsed)

    def explain(self, customer_id: str, item_id: str, n: int = 3, *, new_events=()) -> list[tuple[str, float]]:
        """The customer's purchases that drove ``item_id``'s score, as (item_id, contribution)."""
        row, _ = self.history_row(customer_id, new_events)
        item = self.items.index(item_id)
        return [(str(self.items.ids[j]), share) for j, share in self.algorithm.explain(row, item, n)]

    def history_items(self, customer_id: str, *, new_events: Iterable[tuple[str, float]] = (), training_history: bool = True) -> list[str]:
        """The items of the customer's current history (what :meth:`recommend` leaves out
        unless ``include_purchased``): training items, unless ``training_history`` is False,
        plus those of ``new_events`` the model knows."""
        row, _ = self.history_row(customer_id, new_events, training_history=training_history)
        return self.items.ids[row.indices].tolist()

    def purchased(self, customer_id: str) -> list[str]:
        """Items in the customer's training history."""
        customer = self.customers.get(customer_id)
        if customer < 0:
            return []
        return self.items.ids[self.history.indices[self.history.indptr[customer] : self.history.indptr[customer + 1]]].tolist()

    @functools.cached_property
    def top_list_appearances(self) -> np.ndarray | None:
        """For each item, in how many customers' precomputed top lists it appears (None without
        top lists). Counted once per model, in chunks (the lists may be a large memory map)."""
        if self.top_lists is None:
            return None
        counts = np.zeros(len(self.items) + 1, dtype=np.int64)
        lists = self.top_lists.items
        for start in range(0, lists.shape[0], 1 << 16):
            # +1 moves the -1 padding into slot 0, dropped below.
            counts += np.bincount(lists[start : start + (1 << 16)].ravel() + 1, minlength=len(counts))
        return counts[1:]

    def warm_up(self) -> None:
        """Build lazily cached state now, so the first request after a load is not the slow one."""
        self.labels.lists  # noqa: B018 - evaluated for its caching side effect
        self.algorithm.warm_up()


def erased_since(model: Model, feedback: CustomerFeedback) -> bool:
    """True when the customer was erased after ``model`` learned them: their training
    history must not be used (it still sits in the model's arrays)."""
    return feedback.erasure_id > model.erasures_through


def feedback_options(model: Model, feedback: CustomerFeedback, exclude: Sequence[str] = ()) -> dict[str, Any]:
    """:meth:`Model.recommend`'s and :meth:`Model.rank`'s keyword arguments for a customer's
    stored feedback, as every answer (API, dashboard, CLI) folds it in: the new events and
    which of them were only viewed, the "not interested" items left out besides ``exclude``,
    and no training history once the customer was erased after the model learned them."""
    return {
        "new_events": feedback.new_events,
        "viewed": feedback.viewed,
        "exclude": [*exclude, *feedback.rejected] if feedback.rejected else exclude,
        "training_history": not erased_since(model, feedback),
    }
