"""Metric definitions pinned by hand-computed cases, and splits that keep every customer."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.algorithms import create_algorithm
from recommender.errors import EmptySplitError
from recommender.evaluation import accuracy_at_k, evaluate, hit_matrix, random_split, run_evaluation, split_matrices
from recommender.evaluation.holdout import SplitSpec, split_log
from recommender.evaluation.splits import leave_last_n_split, load_lightgcn
from recommender.purchases import load_purchases


def test_hand_computed_metrics():
    # Customer 0: relevant {1, 3}; list [1, 2, 3] -> hits at ranks 1 and 3.
    # Customer 1: relevant {9}; list [4, 5, 6] -> no hit.
    recommended = np.array([[1, 2, 3], [4, 5, 6]])
    test = sp.csr_matrix(([1, 1, 1], ([0, 0, 1], [1, 3, 9])), shape=(2, 10))
    hits = hit_matrix(recommended, test)
    assert hits.tolist() == [[True, False, True], [False, False, False]]
    metrics = accuracy_at_k(hits, np.array([2, 1]), 3)
    dcg = 1 + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3)
    assert metrics["precision"] == pytest.approx((2 / 3) / 2)
    assert metrics["recall"] == pytest.approx((2 / 2) / 2)
    assert metrics["ndcg"] == pytest.approx((dcg / idcg) / 2)
    assert metrics["map"] == pytest.approx(((1 + 2 / 3) / 2) / 2)
    assert metrics["hit_rate"] == pytest.approx(0.5)
    assert metrics["mrr"] == pytest.approx(0.5)


def test_ndcg_ideal_uses_min_of_test_items_and_k():
    hits = np.array([[True, False]])
    assert accuracy_at_k(hits, np.array([5]), 2)["ndcg"] == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert accuracy_at_k(hits, np.array([1]), 2)["ndcg"] == pytest.approx(1.0)


def test_padding_never_counts_as_a_hit():
    test = sp.csr_matrix(([1], ([0], [0])), shape=(1, 3))
    assert not hit_matrix(np.array([[-1, -1]]), test).any()


def test_random_split_is_seeded_and_disjoint(demo_files):
    log = load_purchases(demo_files["purchases"])
    first_train, first_test = random_split(log, 0.2, seed=3)
    again_train, again_test = random_split(log, 0.2, seed=3)
    assert np.array_equal(first_test.item_index, again_test.item_index)
    train, test = split_matrices(first_train, first_test)
    assert train.multiply(test).nnz == 0
    assert 0.15 < test.nnz / (train.nnz + test.nnz) < 0.25
    assert np.all(np.diff(train.indptr) > 0)  # nobody loses their whole history


def test_a_split_that_holds_out_nothing_is_refused(demo_files):
    log = load_purchases(demo_files["purchases"])
    with pytest.raises(EmptySplitError, match="no customer has more than 1000 distinct items"):
        split_log(log, SplitSpec("leave-last", leave_last=1000))
    first_events = np.zeros(len(log), dtype=bool)
    first_events[np.unique(log.customer_index, return_index=True)[1]] = True  # one item each: a customer keeps it for training
    with pytest.raises(EmptySplitError, match="the random split held out no purchase"):
        split_log(log.subset(first_events), SplitSpec("random"))


def test_leave_last_n_puts_the_latest_purchase_in_test(demo_files):
    log = load_purchases(demo_files["purchases"])
    train, test = leave_last_n_split(log, 1)
    for customer in np.unique(test.customer_index)[:20]:
        latest_test = test.timestamp[test.customer_index == customer].max()
        assert train.timestamp[train.customer_index == customer].max() <= latest_test


def test_lightgcn_format(tmp_path):
    (tmp_path / "train.txt").write_text("0 1 2\n1 2\n")
    (tmp_path / "test.txt").write_text("0 3\n1 1\n")
    train, test = load_lightgcn(tmp_path / "train.txt", tmp_path / "test.txt")
    train_matrix, test_matrix = split_matrices(train, test)
    assert train_matrix.nnz == 3 and test_matrix.nnz == 2


def test_evaluate_ranks_personalised_above_popular(demo_files):
    log = load_purchases(demo_files["purchases"])
    train, test = split_matrices(*random_split(log, 0.2, seed=1))
    popular = evaluate(create_algorithm("popular").fit(train), train, test, (10,))
    knn = evaluate(create_algorithm("item-knn-bm25").fit(train), train, test, (10,))
    assert knn["recall@10"] > popular["recall@10"]
    assert set(knn) >= {"precision@10", "ndcg@10", "map@10", "hit_rate@10", "mrr@10", "coverage@10", "popularity@10"}


def test_a_catalogue_smaller_than_k_is_evaluated_with_padded_lists(known_answer_matrix):
    """10 items, k=20: the lists hold at most the 7 unbought items, the rest is padding (no hits)."""
    train = known_answer_matrix.copy()
    test = sp.csr_matrix(([1.0], ([0], [3])), shape=train.shape)  # customer 0's unbought a3
    metrics = evaluate(create_algorithm("item-knn").fit(train), train, test, ks=(5, 20))
    assert metrics["hit_rate@5"] == 1.0 and metrics["recall@20"] == 1.0


def test_evaluation_measures_the_lists_that_are_served():
    """Items nothing bought points to are served as popular items (the top-N path's top-up),
    so evaluation scores those, not the algorithm's zero-score items in index order."""
    bought = [[0], [0, 1], [0, 1, 2], [4, 5], [5], [4, 5], [5]]  # item 5 is the most popular
    rows = [r for r, items in enumerate(bought) for _ in items]
    train = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, [i for items in bought for i in items])), shape=(7, 6))
    test = sp.csr_matrix(([1.0], ([0], [5])), shape=(7, 6))  # customer 0 (bought item 0) buys item 5 next
    knn = create_algorithm("item-knn").fit(train)
    items, scores = knn.recommend(train[0], 3)
    assert items[0][:2].tolist() == [1, 2] and scores[0][2] == 0 and items[0][2] != 5  # 3, 4 and 5 score 0: a tie
    run = run_evaluation(knn, train, test, 3)
    assert run.recommended.tolist() == [[1, 2, 5]] and run.metrics([3])["recall@3"] == 1.0
