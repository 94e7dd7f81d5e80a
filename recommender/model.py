"""A trained model in the customer's terms: external ids in, named items with reasons out.

The top-N pipeline for one customer: history lookup (training history plus any
newer events) -> candidates (catalog filters, include/exclude lists) -> algorithm
scores -> drop already purchased -> top-N -> top up from popular items -> reasons.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse as sp

from .algorithms import Algorithm
from .catalog import Catalog
from .vocabulary import IdVocabulary

PERSONALIZED = "personalized"
POPULAR = "popular"


@dataclass
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
        top_lists: tuple[np.ndarray, np.ndarray] | None = None,
    ):
        if history.shape != (len(customers), len(items)):
            raise ValueError(f"history shape {history.shape} does not match vocabularies ({len(customers)}, {len(items)})")
        self.algorithm = algorithm
        self.customers = customers
        self.items = items
        self.history = history
        self.catalog = catalog if catalog is not None else Catalog.empty(items)
        self.manifest = manifest or {}
        # Precomputed best items per training customer (Gorse's cache): served as is while
        # the customer's history is unchanged, so most requests need no scoring at all.
        self.top_items, self.top_scores = top_lists if top_lists is not None else (None, None)
        popularity = np.bincount(history.indices, minlength=len(items)).astype(np.float32)
        self.popularity = popularity
        self._popular_order = np.lexsort((np.arange(len(items)), -popularity))

    @property
    def version(self) -> str:
        return self.manifest.get("version", "unsaved")

    def precompute_top_lists(self, k: int = 50, chunk_rows: int | None = None, progress=None) -> None:
        """Cache the top-``k`` unbought items of every training customer (scored in chunks)."""
        k = min(int(k), len(self.items))
        rows = len(self.customers)
        chunk_rows = chunk_rows or max(1, (1 << 24) // max(len(self.items), 1))
        top_items = np.empty((rows, k), dtype=np.int32)
        top_scores = np.empty((rows, k), dtype=np.float32)
        for start in range(0, rows, chunk_rows):
            users = np.arange(start, min(rows, start + chunk_rows))
            items, scores = self.algorithm.recommend(self.history[users], k, users=users)
            top_items[users], top_scores[users] = items, scores
            if progress:
                progress(len(users))
        self.top_items, self.top_scores = top_items, top_scores

    # -- histories ----------------------------------------------------------------------
    def history_row(self, customer_id: str, new_events: Iterable[tuple[str, float]] = ()) -> tuple[sp.csr_matrix, int]:
        """The customer's current history as a 1 x items row, and their training index.

        ``new_events`` are (item_id, weight) pairs newer than the model; items the
        model has never seen cannot be scored yet and are left out. The index is -1
        when the customer is unknown or their history changed since training.
        """
        user = self.customers.get(customer_id)
        if user >= 0:
            start, end = self.history.indptr[user], self.history.indptr[user + 1]
            indices = list(self.history.indices[start:end])
            weights = list(self.history.data[start:end])
        else:
            indices, weights = [], []
        changed = False
        for item_id, weight in new_events:
            item = self.items.get(item_id)
            if item >= 0:
                indices.append(item)
                weights.append(weight)
                changed = True
        row = sp.csr_matrix(
            (np.asarray(weights, dtype=np.float32), np.asarray(indices, dtype=np.int64), [0, len(indices)]),
            shape=(1, len(self.items)),
        )
        row.sum_duplicates()
        return row, (-1 if changed else user)

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
        """Top-``n`` items for one customer; customers with no history get popular items."""
        row, user = self.history_row(customer_id, new_events)
        allowed = self.candidate_mask(include=include, exclude=exclude, category=category)
        if row.nnz == 0 or not self.algorithm.personalised:
            return RecommendationList(customer_id, POPULAR, self._popular(n, allowed, row, include_purchased))
        cached = self._from_top_lists(user, n, allowed) if include is None and not include_purchased else None
        if cached is not None:
            indices, scores = cached
        else:
            indices, scores = self.algorithm.recommend(
                row, n, users=np.array([user]), exclude_seen=not include_purchased, allowed=allowed
            )
            indices, scores = indices[0], scores[0]
        keep = indices >= 0
        indices, scores = indices[keep], scores[keep]
        reasons = self._reasons(row, indices, user) if with_reasons else [[] for _ in indices]
        items = [self._item(int(i), float(s), because) for i, s, because in zip(indices, scores, reasons)]
        if len(items) < n:
            # Gorse-style fallback chain: top up from popular items not already listed.
            taken = set(int(i) for i in indices)
            extra = [r for r in self._popular(n + len(taken), allowed, row, include_purchased) if self.items.index(r.item_id) not in taken]
            items.extend(extra[: n - len(items)])
        return RecommendationList(customer_id, PERSONALIZED, items)

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
    def _from_top_lists(self, user: int, n: int, allowed: np.ndarray | None):
        """The cached answer for an unchanged training customer, or None when it cannot serve."""
        if self.top_items is None or user < 0:
            return None
        items, scores = self.top_items[user], self.top_scores[user]
        if allowed is not None:
            keep = (items >= 0) & allowed[np.maximum(items, 0)]
            items, scores = items[keep], scores[keep]
        if np.count_nonzero(items >= 0) < min(n, len(self.items)) and len(items) < len(self.items):
            return None  # filters left too few cached items: score the whole catalog
        return items[:n].astype(np.int64), scores[:n]

    def _popular(self, n: int, allowed: np.ndarray | None, row: sp.csr_matrix, include_purchased: bool) -> list[Recommendation]:
        order = self._popular_order
        if allowed is not None:
            order = order[allowed[order]]
        if not include_purchased and row.nnz:
            order = order[~np.isin(order, row.indices)]
        return [self._item(int(i), float(self.popularity[i]), [], popular=True) for i in order[:n]]

    def _reasons(self, row: sp.csr_matrix, items: np.ndarray, user: int = -1, per_item: int = 2) -> list[list[int]]:
        if len(items) == 0:
            return []
        try:
            contributions = self.algorithm.contributions(row, np.asarray(items), user)
        except NotImplementedError:
            return [[] for _ in items]
        reasons = []
        for weights in contributions:
            order = np.argsort(-weights, kind="stable")[:per_item]
            reasons.append([int(row.indices[j]) for j in order if weights[j] > 0])
        return reasons

    def _item(self, index: int, score: float, because: list[int], *, popular: bool = False, reason: str | None = None) -> Recommendation:
        names = [str(self.catalog.names[j]) for j in because]
        if reason is None:
            if names:
                reason = "because you bought " + " and ".join(names)
            elif popular:
                reason = "popular with other customers"
            else:
                reason = "matches your purchase history"
        return Recommendation(
            item_id=str(self.items.ids[index]),
            score=score,
            name=str(self.catalog.names[index]),
            category=str(self.catalog.categories[index]),
            reason=reason,
            because=[str(self.items.ids[j]) for j in because],
        )

