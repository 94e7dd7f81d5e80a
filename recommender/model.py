"""A trained model in the customer's terms: external ids in, named items with reasons out.

The top-N pipeline for one customer: history lookup (training history plus any
newer events) -> candidates (catalog filters, include/exclude lists) -> algorithm
scores -> drop already purchased -> top-N -> top up from popular items -> reasons.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from .algorithms import Algorithm
from .algorithms.base import strongest_purchases
from .catalog import Catalog
from .vocabulary import IdVocabulary

PERSONALIZED = "personalized"
POPULAR = "popular"
REASONS_PER_ITEM = 2  # purchases named in "because you bought ..."
# Answers scored from new events kept per model (and server worker): 1,024 answers of up to
# MAX_N (100) items stay under about 50 MB; at n=10 about 5 MB.
LIVE_ANSWERS_KEPT = 1024


@dataclass  # not slots: orjson encodes a __dict__ dataclass about 4x faster
class Recommendation:
    item_id: str
    score: float
    name: str
    category: str = ""
    reason: str = ""
    because: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TopLists:
    """Each training customer's best unbought items, precomputed at training (Gorse's cache).

    Served as is while the customer's history is unchanged, so most requests need no
    scoring and no attribution at all.
    """

    items: np.ndarray  # (customers, k) int32 item indices, best first, -1 padded
    scores: np.ndarray  # (customers, k) float32
    reasons: np.ndarray | None = None  # (customers, k, REASONS_PER_ITEM) int32 purchases, -1 padded

    @property
    def k(self) -> int:
        return self.items.shape[1]


@dataclass
class RecommendationList:
    customer_id: str
    source: str  # PERSONALIZED or POPULAR
    items: list[Recommendation]


class Model:
    """An algorithm bundled with its vocabularies, training history and catalog."""

    def __init__(
        self,
        algorithm: Algorithm,
        customers: IdVocabulary,
        items: IdVocabulary,
        history: sp.csr_matrix,
        catalog: Catalog | None = None,
        manifest: dict | None = None,
        top_lists: TopLists | None = None,
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
        popularity = np.bincount(history.indices, minlength=len(items)).astype(np.float32)
        self.popularity = popularity
        self._popular_order = np.lexsort((np.arange(len(items)), -popularity))

    @property
    def version(self) -> str:
        return self.manifest.get("version", "unsaved")

    def precompute_top_lists(
        self, k: int = 50, chunk_rows: int | None = None, progress=None, *, reasons: bool = True, workers: int = 1
    ) -> None:
        """Cache the top-``k`` unbought items of every training customer (scored in chunks),
        and with ``reasons`` the purchases that drove each, so cached answers are explained
        without any work per request. ``workers`` threads score chunks side by side, each
        with one BLAS thread (the sparse and small-matrix steps do not parallelise inside)."""
        k = min(int(k), len(self.items))
        rows = len(self.customers)
        chunk_rows = chunk_rows or max(1, (1 << 24) // max(len(self.items), 1))
        top_items = np.empty((rows, k), dtype=np.int32)
        top_scores = np.empty((rows, k), dtype=np.float32)
        top_reasons = np.full((rows, k, REASONS_PER_ITEM), -1, dtype=np.int32) if reasons else None
        explained = reasons

        def score(users: np.ndarray) -> None:
            nonlocal explained
            history = self.history[users]
            items, scores = self.algorithm.recommend(history, k, users=users)
            top_items[users], top_scores[users] = items, scores
            if explained:
                try:
                    top_reasons[users] = self.algorithm.top_contributors(history, users, items, REASONS_PER_ITEM)
                except NotImplementedError:
                    explained = False  # the algorithm cannot attribute: answers carry no reasons
            if progress:
                progress(len(users))

        chunks = [np.arange(start, min(rows, start + chunk_rows)) for start in range(0, rows, chunk_rows)]
        if workers <= 1:
            for users in chunks:
                score(users)
        else:
            with threadpool_limits(1, "blas"), ThreadPoolExecutor(workers, thread_name_prefix="top-lists") as pool:
                list(pool.map(score, chunks))  # list(): re-raises a chunk's exception here
        self.top_lists = TopLists(top_items, top_scores, top_reasons if explained else None)

    # -- histories ----------------------------------------------------------------------
    def history_row(self, customer_id: str, new_events: Iterable[tuple[str, float]] = ()) -> tuple[sp.csr_matrix, int]:
        """The customer's current history as a 1 x items row, and their training index.

        ``new_events`` are (item_id, weight) pairs newer than the model; items the
        model has never seen cannot be scored yet and are left out. The index is -1
        when the customer is unknown or their history changed since training.
        """
        return self._history_row(self.customers.get(customer_id), self._known_events(new_events))

    def _known_events(self, new_events: Iterable[tuple[str, float]]) -> list[tuple[int, float]]:
        """(item index, weight) of the events whose items the model knows."""
        known = []
        for item_id, weight in new_events:
            item = self.items.get(item_id)
            if item >= 0:
                known.append((item, weight))
        return known

    def _history_row(self, user: int, added: list[tuple[int, float]]) -> tuple[sp.csr_matrix, int]:
        if user >= 0:
            start, end = self.history.indptr[user], self.history.indptr[user + 1]
            indices = list(self.history.indices[start:end])
            weights = list(self.history.data[start:end])
        else:
            indices, weights = [], []
        for item, weight in added:
            indices.append(item)
            weights.append(weight)
        row = sp.csr_matrix(
            (np.asarray(weights, dtype=np.float32), np.asarray(indices, dtype=np.int64), [0, len(indices)]),
            shape=(1, len(self.items)),
        )
        row.sum_duplicates()
        return row, (-1 if added else user)

    # -- recommendations --------------------------------------------------------------
    def candidate_mask(
        self, *, include: Sequence[str] | None = None, exclude: Sequence[str] = (), category: str | None = None
    ) -> np.ndarray | None:
        """Boolean mask of items allowed by the request's filters, None when unfiltered."""
        if include is None and not exclude and not category:
            return None
        mask = np.ones(len(self.items), dtype=bool)
        if include is not None:
            mask[:] = False
            known = self.items.lookup(include)
            mask[known[known >= 0]] = True
        if exclude:
            known = self.items.lookup(exclude)
            mask[known[known >= 0]] = False
        if category:
            mask &= self.catalog.category_mask(category)
        return mask

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
    ) -> RecommendationList:
        """Top-``n`` items for one customer; customers with no history get popular items.

        The answer is shared with later identical requests: treat it as read-only."""
        user, added = self.customers.get(customer_id), self._known_events(new_events)
        if user >= 0 and not added and include is None and not include_purchased:
            # The common case: a training customer with nothing new, answered from the cache.
            cached = self._cached_answer(user, n, self.candidate_mask(exclude=exclude, category=category), with_reasons)
            if cached is not None:
                return RecommendationList(customer_id, PERSONALIZED, cached)
        if added:
            # Scored live (milliseconds, not microseconds), so remembered: the same
            # customer asking again before their next event gets the same answer at once.
            return self._live_answers(
                customer_id, user, tuple(added), n, None if include is None else tuple(include), tuple(exclude),
                category, include_purchased, with_reasons,
            )
        return self._live_answer(customer_id, user, (), n, include, exclude, category, include_purchased, with_reasons)

    @functools.cached_property
    def _live_answers(self):
        """:meth:`_live_answer` behind a thread-safe LRU cache. Every input is in the key,
        new events included, so an event makes a new key: never a stale answer."""
        return functools.lru_cache(maxsize=LIVE_ANSWERS_KEPT)(self._live_answer)

    def _live_answer(self, customer_id, user, added, n, include, exclude, category, include_purchased, with_reasons) -> RecommendationList:
        row, user = self._history_row(user, added)
        allowed = self.candidate_mask(include=include, exclude=exclude, category=category)
        if row.nnz == 0 or not self.algorithm.personalised:
            return RecommendationList(customer_id, POPULAR, self._popular(n, allowed, row, include_purchased))
        cached = self._from_top_lists(user, n, allowed) if include is None and not include_purchased else None
        if cached is not None:
            _, indices, scores = cached
        else:
            indices, scores = self.algorithm.recommend(
                row, n, users=np.array([user]), exclude_seen=not include_purchased, allowed=allowed
            )
            indices, scores = indices[0], scores[0]
        keep = indices >= 0
        indices, scores = indices[keep], scores[keep]
        reasons = self._reasons(row, indices, user) if with_reasons else [[] for _ in indices]
        items = [self._item(int(i), float(s), because) for i, s, because in zip(indices, scores, reasons)]
        return RecommendationList(customer_id, PERSONALIZED, self._topped_up(items, n, allowed, row, include_purchased))

    def rank(self, customer_id: str, item_ids: Sequence[str], *, new_events: Iterable[tuple[str, float]] = ()) -> RecommendationList:
        """The given candidates ordered best first for this customer; unknown items last."""
        row, user = self.history_row(customer_id, new_events)
        known = self.items.lookup(item_ids)
        personal = row.nnz > 0 and self.algorithm.personalised
        if personal:
            scores = self.algorithm.scores(row, np.array([user]))[0]
        else:
            scores = self.popularity
        ranked = sorted(
            range(len(item_ids)),
            key=lambda k: (known[k] < 0, -float(scores[known[k]]) if known[k] >= 0 else 0.0, k),
        )
        reasons = self._reasons(row, known[[k for k in ranked if known[k] >= 0]], user) if personal else None
        items, reason_position = [], 0
        for k in ranked:
            if known[k] < 0:
                items.append(Recommendation(item_ids[k], float("nan"), item_ids[k], "", "unknown to the current model"))
                continue
            because = reasons[reason_position] if reasons is not None else []
            reason_position += 1
            items.append(self._item(int(known[k]), float(scores[known[k]]), because, popular=not personal))
        return RecommendationList(customer_id, PERSONALIZED if personal else POPULAR, items)

    def similar_items(self, item_id: str, n: int = 10) -> list[Recommendation]:
        """Customers who bought ``item_id`` also bought these (raises UnknownIdError)."""
        item = self.items.index(item_id)
        indices, scores = self.algorithm.similar_items(np.array([item]), n)
        return [
            self._item(int(i), float(s), [], reason=f"often bought with {self.catalog.names[item]}")
            for i, s in zip(indices[0], scores[0])
            if i >= 0
        ]

    def explain(self, customer_id: str, item_id: str, n: int = 3, *, new_events=()) -> list[tuple[str, float]]:
        """The customer's purchases that drove ``item_id``'s score, as (item_id, contribution)."""
        row, _ = self.history_row(customer_id, new_events)
        item = self.items.index(item_id)
        return [(str(self.items.ids[j]), share) for j, share in self.algorithm.explain(row, item, n)]

    def purchased(self, customer_id: str) -> list[str]:
        """Items in the customer's training history."""
        if customer_id not in self.customers:
            return []
        user = self.customers.index(customer_id)
        return self.items.ids[self.history.indices[self.history.indptr[user] : self.history.indptr[user + 1]]].tolist()

    # -- helpers ----------------------------------------------------------------------
    def _cached_answer(self, user: int, n: int, allowed: np.ndarray | None, with_reasons: bool) -> list[Recommendation] | None:
        """A training customer's answer straight from the top lists, reasons included;
        None when there are no lists (or no stored reasons while reasons are wanted), or
        when the filters leave too few cached items."""
        lists = self.top_lists
        if lists is None or (with_reasons and lists.reasons is None) or not self.algorithm.personalised:
            return None
        if allowed is None and n <= lists.k:
            # The storefront's usual request: the head of the list. Read as Python lists at
            # once, because each numpy call inside a request costs a microsecond or more.
            indices = lists.items[user, :n].tolist()
            if indices[-1] < 0:  # a short list (-1 padded): let _from_top_lists drop the padding
                return self._cached_answer_filtered(user, n, allowed, with_reasons)
            scores, positions = lists.scores[user, :n].tolist(), slice(0, n)
        else:
            return self._cached_answer_filtered(user, n, allowed, with_reasons)
        return self._cached_items(user, positions, indices, scores, with_reasons)

    def _cached_answer_filtered(self, user: int, n: int, allowed: np.ndarray | None, with_reasons: bool):
        found = self._from_top_lists(user, n, allowed)
        if found is None:
            return None
        positions, indices, scores = found
        return self._cached_items(user, positions, indices.tolist(), scores.tolist(), with_reasons)

    def _cached_items(self, user: int, positions, indices: list[int], scores: list[float], with_reasons: bool):
        item = self._item
        if not with_reasons:
            return [item(i, s, []) for i, s in zip(indices, scores)]
        return [
            # Padding (-1) only ever follows the stored reasons, so a full row needs no filtering.
            item(i, s, because if because and because[-1] >= 0 else [j for j in because if j >= 0])
            for i, s, because in zip(indices, scores, self.top_lists.reasons[user, positions].tolist())
        ]

    def _from_top_lists(self, user: int, n: int, allowed: np.ndarray | None):
        """The cached answer for an unchanged training customer, or None when it cannot serve:
        (places in the cached list, item indices, scores)."""
        if self.top_lists is None or user < 0:
            return None
        items, scores = self.top_lists.items[user], self.top_lists.scores[user]
        if allowed is None and n <= len(items) and items[n - 1] >= 0:
            places = slice(0, n)  # the common request: the head of the list, as cached (a view)
        else:
            keep = items >= 0
            if allowed is not None:
                keep &= allowed[np.maximum(items, 0)]
            places = np.flatnonzero(keep)
            if len(places) < min(n, len(self.items)) and len(items) < len(self.items):
                return None  # filters left too few cached items: score the whole catalog
            places = places[:n]
        return places, items[places], scores[places]

    def _popular(self, n: int, allowed: np.ndarray | None, row: sp.csr_matrix, include_purchased: bool) -> list[Recommendation]:
        order = self._popular_order
        if allowed is not None:
            order = order[allowed[order]]
        if not include_purchased and row.nnz:
            order = order[~np.isin(order, row.indices)]
        return [self._item(int(i), float(self.popularity[i]), [], popular=True) for i in order[:n]]

    def _topped_up(self, items: list[Recommendation], n: int, allowed, row: sp.csr_matrix, include_purchased: bool):
        """Gorse-style fallback chain: fill a short list up from popular items not listed."""
        if len(items) >= n:
            return items
        taken = {item.item_id for item in items}
        extra = [r for r in self._popular(n + len(taken), allowed, row, include_purchased) if r.item_id not in taken]
        return items + extra[: n - len(items)]

    def _reasons(self, row: sp.csr_matrix, items: np.ndarray, user: int = -1) -> list[list[int]]:
        if len(items) == 0:
            return []
        try:
            contributions = self.algorithm.contributions(row, np.asarray(items), user)
        except NotImplementedError:
            return [[] for _ in items]
        chosen = strongest_purchases(contributions, row.indices, REASONS_PER_ITEM)
        return [[int(j) for j in because if j >= 0] for because in chosen]

    @functools.cached_property
    def _labels(self) -> tuple[list[str], list[str], list[str]]:
        """Item ids, names and categories as Python lists (built once, see :meth:`warm_up`):
        indexing numpy string arrays item by item costs more than the rest of a cached answer."""
        return self.items.ids.tolist(), self.catalog.names.tolist(), self.catalog.categories.tolist()

    def warm_up(self) -> None:
        """Build lazily cached state now, so the first request after a load is not the slow one."""
        self._labels  # noqa: B018 - evaluated for its caching side effect
        self.algorithm.warm_up()

    def _item(self, index: int, score: float, because: list[int], *, popular: bool = False, reason: str | None = None) -> Recommendation:
        ids, names, categories = self._labels
        if len(because) == 2 and reason is None:  # most cached items name two purchases: spelled out, as this runs per item
            first, second = because
            reason, because_ids = f"because you bought {names[first]} and {names[second]}", [ids[first], ids[second]]
        else:
            because_ids = [ids[j] for j in because]
            if reason is None:
                reason = _reason_text(names, because, popular)
        return Recommendation(ids[index], score, names[index], categories[index], reason, because_ids)


def _reason_text(names: list[str], because: list[int], popular: bool) -> str:
    """"because you bought A and B" (two purchases are spelled out in Model._item)."""
    if not because:
        return "popular with other customers" if popular else "matches your purchase history"
    return "because you bought " + " and ".join([names[j] for j in because])
