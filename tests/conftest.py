"""Shared fixtures: small known-answer data and a seeded demo store."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.demo import generate_store, write_store


def two_group_matrix() -> sp.csr_matrix:
    """20 customers x 10 items in two taste groups with an obvious right answer.

    Customers 0-9 buy only items 0-4, customers 10-19 only items 5-9; each buys 3 of
    the 5 items of their group, in a rotating pattern so every item is bought often.
    """
    rows, cols = [], []
    for customer in range(20):
        group = 0 if customer < 10 else 5
        for offset in range(3):
            rows.append(customer)
            cols.append(group + (customer + offset) % 5)
    return sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(20, 10))


@pytest.fixture
def known_answer_matrix() -> sp.csr_matrix:
    return two_group_matrix()


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory):
    """A small seeded demo store written as CSV (purchases + catalog)."""
    folder = tmp_path_factory.mktemp("demo")
    store = generate_store(customers=400, items=120, purchases=8000, seed=7)
    return write_store(store, folder)


@pytest.fixture(scope="session")
def local_spark():
    """One Spark session in local[2] mode for the whole run (real Spark, no mocks)."""
    pytest.importorskip("pyspark", reason="pyspark is not installed: pip install '.[spark]' (make test installs it)")
    from recommender.spark_support import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()
