"""The first step of every answer: a customer's history as the algorithm sees it.

A history is a CSR row over the model's items: the training purchases plus any
events newer than the model (``new_events``, (item_id, weight) pairs). Items the
model has never seen cannot be scored yet and are left out. The customer's training
index goes with it only while the row is exactly their training history, so that
per-customer state learned at fit time is reused only then.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

from ..vocabulary import IdVocabulary


def known_events(items: IdVocabulary, new_events: Iterable[tuple[str, float]]) -> list[tuple[int, float]]:
    """(item index, weight) of the events whose items the model knows."""
    get = items.get
    return [(index, weight) for index, weight in ((get(item_id), weight) for item_id, weight in new_events) if index >= 0]


def history_row(training: sp.csr_matrix, customer: int, added: list[tuple[int, float]]) -> tuple[sp.csr_matrix, int]:
    """(1 x items row, training index or -1); ``customer`` is -1 for someone the model never saw."""
    if customer >= 0:
        start, end = training.indptr[customer], training.indptr[customer + 1]
        indices = list(training.indices[start:end])
        weights = list(training.data[start:end])
    else:
        indices, weights = [], []
    for item, weight in added:
        indices.append(item)
        weights.append(weight)
    row = sp.csr_matrix(
        (np.asarray(weights, dtype=np.float32), np.asarray(indices, dtype=np.int64), [0, len(indices)]),
        shape=(1, training.shape[1]),
    )
    row.sum_duplicates()
    return row, (-1 if added else customer)


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
