"""The first step of every answer: a customer's history as the algorithm sees it.

A history is a CSR row over the model's items: the training purchases plus any
events newer than the model (``new_events``, (item_id, weight) pairs). Items the
model has never seen cannot be scored yet and are left out. The customer's training
index goes with it only while the row is exactly their training history, so that
per-customer state learned at fit time is reused only then.

New events are folded in under the model's :class:`~recommender.weights.HistoryWeighting`:
they are "now", so with a half-life they count in full beside the training events'
decayed weights (the ones stored in the model), and the repeats rule applies to the
total just as training applied it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

from ..vocabulary import IdVocabulary
from ..weights import HistoryWeighting


def known_events(items: IdVocabulary, new_events: Iterable[tuple[str, float]]) -> list[tuple[int, float]]:
    """(item index, weight) of the events whose items the model knows."""
    get = items.get
    return [(index, weight) for index, weight in ((get(item_id), weight) for item_id, weight in new_events) if index >= 0]


def history_row(
    training: sp.csr_matrix, customer: int, added: list[tuple[int, float]], weighting: HistoryWeighting | None = None
) -> tuple[sp.csr_matrix, int]:
    """(1 x items row, training index or -1); ``customer`` is -1 for someone the model never saw."""
    if customer >= 0:
        start, end = training.indptr[customer], training.indptr[customer + 1]
        indices = list(training.indices[start:end])
        weights = list(training.data[start:end])
    else:
        indices, weights = [], []
    if added and weighting is not None and weighting.repeats != "count":
        return _folded_in(np.asarray(indices, dtype=np.int64), np.asarray(weights, dtype=np.float64), added, weighting, training.shape[1]), -1
    for item, weight in added:
        indices.append(item)
        weights.append(weight)
    row = sp.csr_matrix(
        (np.asarray(weights, dtype=np.float32), np.asarray(indices, dtype=np.int64), [0, len(indices)]),
        shape=(1, training.shape[1]),
    )
    row.sum_duplicates()
    return row, (-1 if added else customer)


def _folded_in(indices: np.ndarray, stored: np.ndarray, added: list[tuple[int, float]], weighting: HistoryWeighting, n_items: int) -> sp.csr_matrix:
    """The stored cells and the new events' summed weights, combined by the repeats rule."""
    new_items = np.fromiter((item for item, _ in added), dtype=np.int64, count=len(added))
    new_weights = np.fromiter((weight for _, weight in added), dtype=np.float64, count=len(added))
    union = np.union1d(indices, new_items)
    old = np.zeros(len(union))
    old[np.searchsorted(union, indices)] = stored
    new = np.bincount(np.searchsorted(union, new_items), weights=new_weights, minlength=len(union))
    values = weighting.fold_in(old, new).astype(np.float32)
    return sp.csr_matrix((values, union, [0, len(union)]), shape=(1, n_items))


def history_rows(training: sp.csr_matrix, customers: np.ndarray) -> sp.csr_matrix:
    """Training histories of many customers (rows of -1, customers the model never saw, are empty).

    Consecutive customers (batch scoring of everyone) slice the matrix without a copy of its index.
    """
    customers = np.asarray(customers, dtype=np.int64)
    if len(customers) and customers[0] >= 0 and np.all(np.diff(customers) == 1):
        return training[customers[0] : customers[-1] + 1]
    known = customers >= 0
    if known.all():
        return training[customers]
    lengths = np.zeros(len(customers), dtype=np.int64)
    rows = training[customers[known]]
    lengths[known] = np.diff(rows.indptr)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    return sp.csr_matrix((rows.data, rows.indices, indptr), shape=(len(customers), training.shape[1]))
