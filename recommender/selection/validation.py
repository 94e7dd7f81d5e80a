"""The validation split the automatic choice is judged on, carved out of the training data.

With timestamps it imitates what the model will face: each sampled customer's most
recent purchases (the last fifth of their events, a whole basket at a time) are held
out, and the model is asked for the items among them that the customer had not
bought before. Without timestamps, a seeded random fifth of each sampled customer's
items is held out instead. Customers who are not sampled keep all their purchases in
the fitting data, so a trial fits on nearly the whole store and its settings and
timings carry over to the final fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..interactions import Interactions, repeat_purchases
from ..purchases import PurchaseLog
from ..weights import HistoryWeighting

VALIDATION_CUSTOMERS = 3000  # at most; paired differences between candidates settle well before this
VALIDATION_FRACTION = 0.2  # of each sampled customer's events (time) or items (random)


@dataclass
class ValidationSplit:
    """The events trials are fitted on, the held-out targets (binary, customers x items), and how."""

    fit_log: PurchaseLog
    targets: sp.csr_matrix
    kind: str  # "time" or "random"
    # With a time split: how much of the held-out period's buying was buying again (the held-out
    # pairs before the repeats were taken out; repeat_purchases' figures), else None.
    repeats: dict | None = None
    _fits: dict = field(default_factory=dict, repr=False)

    def fit_matrix(self, weighting: HistoryWeighting | None = None) -> sp.csr_matrix:
        """The fitting data under ``weighting`` (default: plain sums), built once per weighting."""
        weighting = weighting or HistoryWeighting()
        if weighting not in self._fits:
            self._fits[weighting] = Interactions.from_log(self.fit_log, weighting).matrix
        return self._fits[weighting]

    @property
    def fit(self) -> sp.csr_matrix:
        return self.fit_matrix()

    @property
    def customers(self) -> int:
        return int((np.diff(self.targets.indptr) > 0).sum())

    def describe(self) -> dict:
        described = {
            "kind": self.kind,
            "customers": self.customers,
            "held_out_purchases": int(self.targets.nnz),
            "fraction": VALIDATION_FRACTION,
        }
        if self.repeats is not None:
            described["repeat_purchases"] = self.repeats
        return described


def validation_split(log: PurchaseLog, *, seed: int = 42, customers: int = VALIDATION_CUSTOMERS) -> ValidationSplit:
    """Split ``log`` into fitting data and validation targets (see the module's docstring)."""
    rng = np.random.default_rng(seed)
    if log.timestamp is not None and len(np.unique(log.timestamp[: min(len(log), 100_000)])) > 1:
        held, kind = _latest_events(log), "time"
    else:
        held, kind = _random_items(log, rng), "random"
    # Sample the customers who are judged; the others' held-out events go back to fitting.
    candidates = np.unique(log.customer_index[held])
    if len(candidates) > customers:
        chosen = np.zeros(len(log.customers), dtype=bool)
        chosen[rng.choice(candidates, customers, replace=False)] = True
        held &= chosen[log.customer_index]
    split = ValidationSplit(log.subset(~held), sp.csr_matrix((len(log.customers), len(log.items)), dtype=np.float32), kind)
    targets = Interactions.from_log(log.subset(held)).matrix
    targets.data[:] = 1.0
    if kind == "time":  # the next period's buying again, which no list of new items can hit
        split.repeats = repeat_purchases(split.fit, targets)
    # Only items new to the customer are asked for: the fitted lists exclude what they bought.
    targets = targets - targets.multiply(split.fit > 0)
    targets.eliminate_zeros()
    split.targets = sp.csr_matrix(targets, dtype=np.float32)
    return split


def _latest_events(log: PurchaseLog) -> np.ndarray:
    """Mask of each customer's latest events: from the time of their last fifth on (so one
    basket is never cut in two), for customers with purchases at two or more times."""
    order = np.lexsort((log.timestamp, log.customer_index))
    owners = log.customer_index[order]
    times = log.timestamp[order]
    counts = np.bincount(owners, minlength=len(log.customers))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    keep = np.maximum(1, np.round(VALIDATION_FRACTION * counts).astype(np.int64))
    has = counts >= 2
    cut_time = np.full(len(counts), np.iinfo(np.int64).max)
    cut_time[has] = times[starts[has] + counts[has] - keep[has]]
    first_time = np.where(counts > 0, times[np.minimum(starts, len(times) - 1)], 0)
    cut_time[cut_time <= first_time] = np.iinfo(np.int64).max  # every event at one time: nothing to learn from
    return log.timestamp >= cut_time[log.customer_index]


def _random_items(log: PurchaseLog, rng: np.random.Generator) -> np.ndarray:
    """Mask of the events of a random fifth (at least one) of each customer's items, for
    customers with two or more items, each keeping at least one."""
    pairs = log.customer_index.astype(np.int64) * len(log.items) + log.item_index
    unique_pairs, inverse = np.unique(pairs, return_inverse=True)
    owner = unique_pairs // len(log.items)
    counts = np.bincount(owner, minlength=len(log.customers))
    order = np.lexsort((rng.random(len(unique_pairs)), owner))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order)) - np.repeat(starts, counts)
    held_count = np.where(counts >= 2, np.maximum(1, np.round(VALIDATION_FRACTION * counts)).astype(np.int64), 0)
    return (position < held_count[owner])[inverse.reshape(-1)]
