"""Train/test splits of a purchase log, and the LightGCN benchmark format.

Every split returns two :class:`PurchaseLog` objects against the same vocabularies,
so train and test matrices line up row for row and column for column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from ..purchases import PurchaseLog
from ..vocabulary import IdVocabulary


def random_split(log: PurchaseLog, test_fraction: float = 0.2, seed: int = 42) -> tuple[PurchaseLog, PurchaseLog]:
    """Per customer, a random ``test_fraction`` of their distinct items go to test (seeded).

    Customers with a single item keep it in train.
    """
    if not 0 < test_fraction < 1:
        raise ValueError("test_fraction must be between 0 and 1")
    rng = np.random.default_rng(seed)
    pair = log.customer_index.astype(np.int64) * len(log.items) + log.item_index
    unique_pairs, inverse = np.unique(pair, return_inverse=True)
    owner = unique_pairs // len(log.items)
    # Shuffle pairs within each customer, then send the first ceil(f*count)-ish to test.
    order = np.lexsort((rng.random(len(unique_pairs)), owner))
    counts = np.bincount(owner, minlength=len(log.customers))
    position = np.empty(len(order), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position[order] = np.arange(len(order)) - np.repeat(starts, counts)
    n_test = np.floor(counts * test_fraction + rng.random(len(counts))).astype(np.int64)
    n_test = np.where(counts > 1, np.minimum(n_test, counts - 1), 0)
    pair_in_test = position < n_test[owner]
    in_test = pair_in_test[inverse]
    return log.subset(~in_test), log.subset(in_test)


def leave_last_n_split(log: PurchaseLog, n: int = 1) -> tuple[PurchaseLog, PurchaseLog]:
    """Per customer, the events of their ``n`` most recent distinct items go to test."""
    _require_timestamps(log)
    pair = log.customer_index.astype(np.int64) * len(log.items) + log.item_index
    order = np.lexsort((-log.timestamp, log.customer_index))
    last_seen = {}
    rank_of_pair = np.empty(len(log), dtype=np.int64)
    counter: dict[int, int] = {}
    for row in order:
        key = int(pair[row])
        if key not in last_seen:
            customer = int(log.customer_index[row])
            last_seen[key] = counter.get(customer, 0)
            counter[customer] = last_seen[key] + 1
        rank_of_pair[row] = last_seen[key]
    counts = np.bincount(log.customer_index, minlength=len(log.customers))
    distinct = np.zeros(len(log.customers), dtype=np.int64)
    for customer, value in counter.items():
        distinct[customer] = value
    in_test = (rank_of_pair < n) & (distinct[log.customer_index] > n) & (counts[log.customer_index] > 0)
    return log.subset(~in_test), log.subset(in_test)


def time_split(log: PurchaseLog, cutoff: int) -> tuple[PurchaseLog, PurchaseLog]:
    """Events before ``cutoff`` (epoch seconds) train; at or after it test."""
    _require_timestamps(log)
    later = log.timestamp >= cutoff
    return log.subset(~later), log.subset(later)


def _require_timestamps(log: PurchaseLog) -> None:
    if log.timestamp is None:
        raise DataError("this split needs a timestamp column, and the purchase data has none")


def load_lightgcn(train_path, test_path) -> tuple[PurchaseLog, PurchaseLog]:
    """Read the LightGCN benchmark format (``user item item ...`` per line) as two logs."""
    train_rows = read_lightgcn_pairs(Path(train_path))
    test_rows = read_lightgcn_pairs(Path(test_path))
    users = sorted({u for u, _ in train_rows} | {u for u, _ in test_rows}, key=int)
    items = sorted({i for _, i in train_rows} | {i for _, i in test_rows}, key=int)
    customers, item_vocabulary = IdVocabulary(np.asarray(users, dtype=str)), IdVocabulary(np.asarray(items, dtype=str))

    def to_log(rows):
        c = customers.lookup(u for u, _ in rows).astype(np.int32)
        i = item_vocabulary.lookup(i for _, i in rows).astype(np.int32)
        return PurchaseLog(customers, item_vocabulary, c, i, np.ones(len(rows), dtype=np.float32))

    return to_log(train_rows), to_log(test_rows)


def read_lightgcn_pairs(path: Path) -> list[tuple[str, str]]:
    """(user, item) string pairs from a LightGCN-format file."""
    if not path.is_file():
        raise DataError("file not found", path=path)
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.split()
            if not fields:
                continue
            if not all(f.isdigit() for f in fields):
                raise DataError("expected whitespace-separated integer ids", path=path, line=number)
            rows.extend((fields[0], item) for item in fields[1:])
    return rows
