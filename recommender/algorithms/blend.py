"""Two algorithms' scores mixed per customer: the automatic choice's blend of its two best.

    score = (1 - w) · A / σ_A + w · B / σ_B

A and B are the parts' scores of one customer over the whole catalogue and σ their
standard deviation over it. The parts' scores live on unrelated scales (a graph walk's
mass, a dot product of factors, a sum of similarities), so each is put on the customer's own
spread first: a z-score without its mean, which is the same for every item of a row and so
changes no ranking, and whose absence keeps the score 0 for an item neither part supports
(where the top-N path cuts to popular items). On the four stores of
``benchmarks/bench_stores.py`` but Gowalla this beat a rank-based normalisation on test, by
0.0002-0.0009 NDCG@20 (``research/store_blend.py``).

Everything else is the parts': both are fitted on the same matrix, a new purchase is folded
in by each, reasons are each part's contributions on the same scale as the score, and the
saved state is both parts' arrays under the prefixes ``first.`` and ``second.``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..ranking import similar_length_batches, strongest_purchases
from .base import Algorithm, AlgorithmConfig
from .parameters import parse_config_params
from .standalone import STANDALONE

PARTS = ("first", "second")


@dataclass
class BlendConfig(AlgorithmConfig):
    first: str = "graph-filter"
    first_params: dict = field(default_factory=dict)
    second: str = "als"
    second_params: dict = field(default_factory=dict)
    # The second part's share. The automatic choice picks it on its validation split; 0.3
    # is about where that landed on the demo stores (0.3-0.5), the first part being the winner.
    weight: float = 0.3


class Blend(Algorithm):
    """A mix of two fitted algorithms' per-customer standardised scores (see the module)."""

    name = "blend"
    Config = BlendConfig

    def __init__(self, config: BlendConfig | None = None, **params):
        super().__init__(config, **params)
        self._recent_spreads = RecentSpreads()

    def validate_config(self) -> None:
        config = self.config
        for name in (config.first, config.second):
            if name not in STANDALONE:
                raise ValueError(f"a blend's parts must be other algorithms, one of: {', '.join(sorted(STANDALONE))}; not {name!r}")
        _part_params(config.first, config.first_params)
        _part_params(config.second, config.second_params)
        if not 0.0 <= config.weight <= 1.0:
            raise ValueError(f"weight must be between 0 and 1 (the second part's share), not {config.weight}")

    def _fit(self, customer_items: sp.csr_matrix, *, show_progress: bool) -> None:
        config = self.config
        start = getattr(self, "_start", {})
        for slot, name, params in zip(PARTS, (config.first, config.second), (config.first_params, config.second_params)):
            part = STANDALONE[name](STANDALONE[name].Config(**_part_params(name, params)))
            part.start_from(_slot_arrays(start, slot))
            setattr(self, f"{slot}_", part.fit(customer_items, show_progress=show_progress))
        self.warm_started_ = any(part.warm_started_ for part in self.parts)
        self._recent_spreads = RecentSpreads()

    def start_state(self) -> dict[str, np.ndarray]:
        return {f"{slot}.{name}": array for slot, part in zip(PARTS, self.parts) for name, array in part.start_state().items()}

    def start_from(self, state: dict[str, np.ndarray]) -> None:
        self._start = dict(state)

    @property
    def parts(self) -> tuple[Algorithm, Algorithm]:
        return self.first_, self.second_

    # -- scoring ----------------------------------------------------------------------
    def part_scores(self, history: sp.csr_matrix, customers: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each part's scores of the rows, divided by the row's standard deviation (a row a part
        cannot tell apart, all one value, gets zeros from it: it says nothing)."""
        raw = [np.asarray(part.scores(history, customers), dtype=np.float32) for part in self.parts]
        spreads = np.stack([scores.std(axis=1, dtype=np.float64) for scores in raw], axis=1)
        self._recent_spreads.remember(history, customers, spreads)
        return tuple(_divided(scores, spreads[:, j]) for j, scores in enumerate(raw))

    def mix(self, first: np.ndarray, second: np.ndarray, weight: float | None = None) -> np.ndarray:
        """(1 - w) · first + w · second of :meth:`part_scores`' two arrays (w: the config's weight)."""
        weight = self.config.weight if weight is None else weight
        return ((1.0 - weight) * first + weight * second).astype(np.float32)

    def scores(self, history: sp.csr_matrix, customers: np.ndarray | None = None) -> np.ndarray:
        return self.mix(*self.part_scores(history, customers))

    # -- explanations -----------------------------------------------------------------
    def _scales(self, history: sp.csr_matrix, customers: np.ndarray | None, spreads: np.ndarray | None = None) -> np.ndarray:
        """(rows, 2): the factor each part's scores (and so its contributions) are multiplied by,
        from the parts' spreads as the rows' scoring left them (else the rows are scored again)."""
        if spreads is None:
            spreads = self._recent_spreads.recall(history, customers)
        if spreads is None:
            spreads = np.stack([np.asarray(part.scores(history, customers), dtype=np.float32).std(axis=1, dtype=np.float64)
                                for part in self.parts], axis=1)
        shares = np.array([1.0 - self.config.weight, self.config.weight])
        return np.divide(shares, spreads, out=np.zeros_like(spreads), where=spreads > 0)

    def contributions(self, history_row: sp.csr_matrix, items: np.ndarray, customer: int = -1) -> np.ndarray:
        # The score is linear in each part's score, so each part's contributions scale the same way.
        row = sp.csr_matrix(history_row, dtype=np.float32)
        scales = self._scales(row, np.array([customer]))[0]
        first, second = (np.asarray(part.contributions(row, items, customer), dtype=np.float64) for part in self.parts)
        return (scales[0] * first + scales[1] * second).astype(np.float32)

    def top_contributors(self, history: sp.csr_matrix, customers: np.ndarray, items: np.ndarray, per_item: int = 2) -> np.ndarray:
        # The top purchases of the sum are not the parts' top purchases, so each part's
        # contributions are mixed whole, in batches of rows of similar length (little padding),
        # each part batching its own where it can (graph-filter: about 3x its one-row calls).
        history = sp.csr_matrix(history, dtype=np.float32)
        items, customers = np.asarray(items), np.asarray(customers)
        found = np.full((*items.shape, per_item), -1, dtype=np.int32)
        # The top lists explain the rows they have just scored: their spreads are remembered.
        spreads = self._recent_spreads.recall(history, customers)
        for rows in similar_length_batches(np.diff(history.indptr)):
            batch, asked = history[rows], items[rows]
            scales = self._scales(batch, customers[rows], None if spreads is None else spreads[rows])
            first, second = (part.contribution_weights(batch, customers[rows], asked) for part in self.parts)
            weights = scales[:, 0, None, None] * first + scales[:, 1, None, None] * second
            weights[asked < 0] = 0.0
            purchased = np.full((len(rows), weights.shape[2]), -1, dtype=np.int64)
            slot = np.arange(batch.nnz) - np.repeat(batch.indptr[:-1], np.diff(batch.indptr))
            purchased[np.repeat(np.arange(len(rows)), np.diff(batch.indptr)), slot] = batch.indices
            found[rows] = strongest_purchases(weights, purchased[:, None, :], per_item)
        found[items < 0] = -1
        return found

    def item_similarities(self, items: np.ndarray) -> np.ndarray:
        """The parts' similarities mixed as their scores are (one part alone if the other has none)."""
        found = []
        for part in self.parts:
            try:
                found.append(standardised(np.asarray(part.item_similarities(items), dtype=np.float32)))
            except NotImplementedError:
                found.append(None)
        if found[0] is None and found[1] is None:
            raise NotImplementedError(f"neither part of this blend ({self.config.first}, {self.config.second}) has a notion of item-to-item similarity.")
        if found[0] is None or found[1] is None:
            return found[0] if found[1] is None else found[1]
        return self.mix(found[0], found[1])

    # -- persistence and the rest -----------------------------------------------------
    def _fitted_arrays(self) -> dict[str, np.ndarray]:
        return {f"{slot}.{name}": array for slot, part in zip(PARTS, self.parts) for name, array in part.fitted_arrays().items()}

    def _load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        config = self.config
        for slot, name, params in zip(PARTS, (config.first, config.second), (config.first_params, config.second_params)):
            setattr(self, f"{slot}_", STANDALONE[name].from_arrays(_part_params(name, params), _slot_arrays(arrays, slot), self.n_items_))

    def fitted_settings(self) -> dict:
        """Each part's own choices while fitting (graph-filter's rank and sharpening), merged into
        its parameters, so a refit from these settings does not choose them again."""
        config, settings = self.config, {}
        for slot, part, params in zip(PARTS, self.parts, (config.first_params, config.second_params)):
            chosen = part.fitted_settings()
            fields = type(part).Config.__dataclass_fields__
            if chosen:
                settings[f"{slot}_params"] = {**params, **{k: v for k, v in chosen.items() if k in fields}}
        return settings

    def forget_customers(self, keep: np.ndarray) -> None:
        for part in self.parts:
            part.forget_customers(keep)
        self._recent_spreads = RecentSpreads()  # remembered by customer numbers, which have changed

    def warm_up(self) -> None:
        for part in self.parts:
            part.warm_up()


def _slot_arrays(arrays: dict[str, np.ndarray], slot: str) -> dict[str, np.ndarray]:
    """One part's arrays out of the blend's, whose names carry the part's slot ("first.", "second.")."""
    return {key[len(slot) + 1:]: array for key, array in arrays.items() if key.startswith(f"{slot}.")}


def _part_params(name: str, params: dict) -> dict:
    return parse_config_params(name, STANDALONE[name].Config, params)


def standardised(scores: np.ndarray) -> np.ndarray:
    """Each row divided by its standard deviation over the columns; rows of one value become 0."""
    return _divided(scores, scores.std(axis=1, dtype=np.float64))


def _divided(scores: np.ndarray, spreads: np.ndarray) -> np.ndarray:
    spreads = spreads[:, None]
    return np.divide(scores, spreads, out=np.zeros(scores.shape, dtype=np.float32), where=spreads > 0)


class RecentSpreads:
    """The parts' spreads (rows x 2) of the last few batches scored, by their histories and
    customers. The top lists score a batch of customers, then explain it, and the reasons need
    the same spreads: scoring both parts again took a third of the blend's top lists (20,000
    customers). Thread-safe: top lists are scored by several threads."""

    KEPT = 16

    def __init__(self):
        self._spreads: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(history: sp.csr_matrix, customers: np.ndarray | None) -> bytes:
        # The weights too (a factor model reads them), and the customers (a training
        # customer's row may be answered from learned state rather than folded in).
        history = sp.csr_matrix(history, dtype=np.float32)
        who = b"-" if customers is None else np.asarray(customers, dtype=np.int64).tobytes()
        return b"|".join([history.indptr.astype(np.int64).tobytes(), history.indices.astype(np.int64).tobytes(),
                          history.data.tobytes(), who])

    def remember(self, history: sp.csr_matrix, customers: np.ndarray | None, spreads: np.ndarray) -> None:
        key = self._key(history, customers)
        with self._lock:
            self._spreads[key] = spreads.copy()
            self._spreads.move_to_end(key)
            while len(self._spreads) > self.KEPT:
                self._spreads.popitem(last=False)

    def recall(self, history: sp.csr_matrix, customers: np.ndarray | None) -> np.ndarray | None:
        key = self._key(history, customers)
        with self._lock:
            found = self._spreads.get(key)
            if found is not None:
                self._spreads.move_to_end(key)
        return None if found is None else found.copy()
