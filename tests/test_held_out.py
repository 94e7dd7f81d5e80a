"""Choosing a setting at fit time on held-out purchases (recommender/algorithms/held_out.py)."""

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.algorithms import create_algorithm
from recommender.algorithms.graph_filter import SHARPENING_CHOICES
from recommender.algorithms.held_out import best_setting, hold_out
from tests.conftest import two_group_matrix


def purchases(lengths, items=50):
    rows = np.repeat(np.arange(len(lengths)), lengths)
    cols = np.concatenate([np.arange(n) for n in lengths])
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(lengths), items))


def test_hold_out_takes_a_fifth_of_some_customers_purchases_and_loses_nothing():
    matrix = purchases([2] * 10 + [3] * 10 + [10] * 20)
    kept, customers, targets = hold_out(matrix, seed=0)
    assert len(customers) == 10  # a quarter of the 40 customers, all eligible (3 or more purchases)
    assert np.diff(matrix.indptr)[customers].min() >= 3
    held = np.diff(targets.indptr)
    assert held.tolist() == [max(1, round(0.2 * n)) for n in np.diff(matrix.indptr)[customers]]
    # Held-out and kept purchases are disjoint and together make the original matrix.
    back = kept.toarray()
    back[customers] += targets.toarray()
    np.testing.assert_array_equal(back, matrix.toarray())
    again = hold_out(matrix, seed=0)
    assert (again[1] == customers).all() and (again[2] != targets).nnz == 0  # seeded
    other = hold_out(matrix, seed=1)
    assert not (np.array_equal(other[1], customers) and (other[2] != targets).nnz == 0)  # another seed, another split


def test_hold_out_leaves_customers_with_two_purchases_alone():
    kept, customers, targets = hold_out(purchases([2] * 40), seed=0)
    assert len(customers) == 0 and targets.shape == (0, 50) and kept.nnz == 80


def test_best_setting_picks_the_setting_that_finds_the_held_out_items():
    history = purchases([1, 1, 1])  # each customer bought item 0
    targets = sp.csr_matrix(np.eye(3, 50, k=10, dtype=np.float32))  # and held out items 10, 11, 12
    wanted = np.zeros((3, 50), np.float32)
    wanted[[0, 1, 2], [10, 11, 12]] = 1.0
    noise = np.tile(np.linspace(1.0, 0.0, 50, dtype=np.float32), (3, 1))  # ranks items 0..19 first

    def scores_for(rows):
        return lambda setting: noise + setting * wanted[: rows.shape[0]]

    chosen, figures = best_setting([0.0, 2.0, 0.5], scores_for, history, targets)
    assert chosen == 2.0  # the held-out item on top: Recall@20 1 and NDCG@20 1
    assert figures[1] == pytest.approx(2.0)
    # Without the boost item 10 + k is found at place 10 + k (item 0 was bought, so excluded):
    # all found (Recall 1), each discounted by 1 / log2(place + 1).
    assert figures[0] == pytest.approx(1 + np.mean([1 / np.log2(place + 1) for place in (10, 11, 12)]))
    # Equal figures: the earlier setting wins.
    assert best_setting([0.3, 0.7], lambda rows: lambda s: noise.copy(), history, targets)[0] == 0.3


def test_graph_filter_chooses_its_sharpening_and_keeps_it_through_save_and_load():
    model = create_algorithm("graph-filter", {"rank": 6}).fit(two_group_matrix())
    assert model.fitted_settings()["sharpening"] in SHARPENING_CHOICES
    loaded = type(model).from_arrays(model.params(), model.fitted_arrays(), 10)
    assert loaded.fitted_settings() == model.fitted_settings()
    np.testing.assert_allclose(loaded.scores(two_group_matrix()), model.scores(two_group_matrix()), rtol=1e-5, atol=1e-7)
    fixed = create_algorithm("graph-filter", {"rank": 6, "sharpening": 0.2}).fit(two_group_matrix())
    assert fixed.fitted_settings() == {"rank": 6, "sharpening": 0.2}  # a given value is used as it is
