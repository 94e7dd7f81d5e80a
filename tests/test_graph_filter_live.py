"""A customer who just bought: the one-row graph-filter path answers exactly like full scoring.

"Full scoring" is the batch formulas every other path uses (``GraphFilter._blend_and_step``
and the batched attribution), applied to the same history row; the live path of
:mod:`recommender.algorithms.graph_filter_live` takes the same sums in another order, so
items, order and reasons must be equal and scores equal up to float32 rounding.
"""

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.algorithms import create_algorithm, graph_filter
from recommender.algorithms import graph_filter_attribution as attribution
from recommender.algorithms import graph_filter_live as live
from recommender.catalog import Catalog
from recommender.model import Model
from recommender.ranking import strongest_purchases, top_k
from recommender.topn import history_row
from recommender.topn.reasons import REASONS_PER_ITEM
from recommender.vocabulary import IdVocabulary

N = 10


def store(seed: int = 7, customers: int = 150, items: int = 90) -> sp.csr_matrix:
    """A random store with taste groups (items bought more within a customer's group), so
    the scores have structure and ties between unrelated items are rare."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 3, customers)
    item_group = rng.integers(0, 3, items)
    chance = np.where(group[:, None] == item_group[None, :], 0.12, 0.03)
    bought = rng.random((customers, items)) < chance
    bought[np.arange(customers), rng.integers(0, items, customers)] = True  # nobody without a purchase
    return sp.csr_matrix(bought.astype(np.float32))


def build(params: dict) -> Model:
    matrix = store()
    customers = IdVocabulary([f"c{i:03d}" for i in range(matrix.shape[0])])
    items = IdVocabulary([f"i{i:02d}" for i in range(matrix.shape[1])])
    catalog = Catalog(np.array([f"Item {i}" for i in range(matrix.shape[1])]), np.array(["A"] * matrix.shape[1]))
    return Model(create_algorithm("graph-filter", params).fit(matrix), customers, items, matrix, catalog)


def full_scoring(algorithm, row: sp.csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """Top-``n`` items, scores and reasons of ``row`` by the batch formulas (main's live path)."""
    blend, step = algorithm._blend_and_step(row)
    scores = (blend if step is None else blend - algorithm.sharpening_ * step).astype(np.float32)
    scores[0, row.indices] = -np.inf
    items, best = top_k(scores, n + 1)
    weights = attribution.contributions(algorithm, row, items[0, :n]).astype(np.float64)
    weights[items[0, :n, None] == row.indices[None, :]] = 0.0
    reasons = [[int(j) for j in because if j >= 0] for because in strongest_purchases(weights, row.indices, REASONS_PER_ITEM)]
    return items[0], best[0], reasons


@pytest.mark.parametrize(
    "params",
    [
        {"rank": 8, "sharpening": 0.7},
        {"rank": 8, "sharpening": 0.0},
        {"rank": 8, "sharpening": 0.35, "normalise_parts": False},
        {"rank": 8, "sharpening": 0.7, "low_rank_weight": 0.0},
        {"rank": None},  # rank and sharpening chosen on held-out purchases, as by default
    ],
)
@pytest.mark.parametrize("pruned", [False, True], ids=["one-pass", "pruned"])
@pytest.mark.parametrize("co_buying", [True, False], ids=["co-buying-held", "through-customers"])
def test_a_live_answer_has_the_items_scores_and_reasons_of_full_scoring(params, pruned, co_buying, monkeypatch):
    if not co_buying:  # as on a large catalogue: both paths walk through the customers, each its own way
        monkeypatch.setattr(graph_filter, "DENSE_WALK_ITEMS", 0)
        monkeypatch.setattr(graph_filter, "SPARSE_WALK_ENTRIES", 0)
    if pruned:  # every answer through row_top: a head of 4 of the 8 directions, later looks at 5 and 6, however many items it leaves
        monkeypatch.setattr(live, "HEAD_DIRECTIONS", 4)
        monkeypatch.setattr(live, "LATER_LOOKS", (5, 6))
        monkeypatch.setattr(live, "PRUNED_SHARE_LIMIT", 1.0)
    else:
        monkeypatch.setattr(live, "can_prune", lambda model: False)
    model = build(params)
    rng = np.random.default_rng(11)
    compared = 0
    for draw in range(40):
        customer = int(rng.integers(-1, len(model.customers)))  # -1: a customer the model never saw
        bought = rng.choice(len(model.items), 1 + draw % 5, replace=False)
        events = [(str(model.items.ids[j]), 1.0) for j in bought]
        customer_id = "stranger" if customer < 0 else str(model.customers.ids[customer])
        row, _ = history_row(model.history, customer, [(int(j), 1.0) for j in bought], model.weighting)
        items, scores, reasons = full_scoring(model.algorithm, row, N)
        if np.isclose(scores[N - 1], scores[N], rtol=1e-5, atol=1e-7):
            continue  # two items tied at the cut: which one makes the list is rounding
        answer = model.recommend(customer_id, N, new_events=events)
        names = model.items.ids
        assert [r.item_id for r in answer.items] == names[items[:N]].tolist(), (customer_id, events)
        assert [r.because for r in answer.items] == [names[because].tolist() for because in reasons], (customer_id, events)
        np.testing.assert_allclose([r.score for r in answer.items], scores[:N], rtol=1e-5, atol=1e-7)
        compared += 1
    assert compared >= 35


def test_one_row_scores_equal_the_batch_formulas_on_every_item():
    model = build({"rank": 8, "sharpening": 0.7})
    rows = model.history[[3, 40, 41]]
    batch = model.algorithm.scores(rows)  # three rows: the batch formulas
    for r in range(3):
        np.testing.assert_allclose(model.algorithm.scores(rows[r]), batch[r : r + 1], rtol=1e-5, atol=1e-7)


def test_explaining_the_row_just_scored_reuses_its_low_pass_divisor():
    model = build({"rank": 8, "sharpening": 0.7})
    algorithm, row = model.algorithm, model.history[[5]]
    items = live.history_items(row)
    fresh = float(algorithm.basis_norms(algorithm.low_rank_in_[items] @ algorithm.singular_vectors_[items]))
    asked = np.arange(10)
    unscored = live.row_contributions(algorithm, row, asked)  # nothing remembered: computed here
    assert algorithm.recent_smooth_norms.recall(row) is None
    algorithm.scores(row)  # one row: scored in the basis, its divisor remembered
    assert algorithm.recent_smooth_norms.recall(row)[0] == pytest.approx(fresh, rel=1e-6)
    np.testing.assert_allclose(live.row_contributions(algorithm, row, asked), unscored, rtol=1e-6, atol=1e-9)
    weighted = sp.csr_matrix(row, copy=True)
    weighted.data *= 3.0  # other weights, the same items: the same divisor (the low-pass part reads items only)
    assert algorithm.recent_smooth_norms.recall(weighted)[0] == pytest.approx(fresh, rel=1e-6)


def test_products_read_in_blocks_equal_the_plain_product():
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((103, 16)).astype(np.float32)
    stacked = rng.standard_normal((3, 16)).astype(np.float32)
    np.testing.assert_allclose(live.products(vectors, stacked, block_rows=10), stacked @ vectors.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(live.products(vectors, stacked[:1]), stacked[:1] @ vectors.T, rtol=1e-5, atol=1e-5)


def test_items_no_walk_reaches_are_scored_and_explained_like_full_scoring(known_answer_matrix):
    """Two taste groups no customer bridges: from a purchase in one, the walk reaches no item
    of the other (an empty join, which must still give float shares)."""
    algorithm = create_algorithm("graph-filter", {"rank": 3, "sharpening": 0.7}).fit(known_answer_matrix)
    row = sp.csr_matrix((np.ones(1, np.float32), [0], [0, 1]), shape=(1, known_answer_matrix.shape[1]))
    other_group = np.array([7, 8])
    blend, step = algorithm._blend_and_step(row)
    np.testing.assert_allclose(algorithm.scores(row), blend - algorithm.sharpening_ * step, rtol=1e-5, atol=1e-7)
    shares = algorithm.contributions(row, other_group)
    assert shares.dtype == np.float32 and shares.shape == (2, 1)
    np.testing.assert_allclose(shares, attribution.contributions(algorithm, row, other_group), rtol=1e-5, atol=1e-7)
    assert np.all(live.walk_paths(algorithm, np.array([0]), other_group) == 0)


@pytest.mark.parametrize(
    "params",
    [{"rank": 12, "sharpening": 0.7}, {"rank": 12, "sharpening": 0.0}, {"rank": 12, "sharpening": 0.35, "normalise_parts": False}],
)
def test_a_pruned_live_answer_has_the_items_and_scores_of_full_scoring(params, monkeypatch):
    """The bound rules items out, never an item of the answer (with or without a filter or the history)."""
    monkeypatch.setattr(live, "HEAD_DIRECTIONS", 6)  # the product's 64, 256 and 512 need a larger basis
    monkeypatch.setattr(live, "LATER_LOOKS", (9,))
    monkeypatch.setattr(live, "PRUNED_SHARE_LIMIT", 1.0)  # every answer pruned, however many items the bound leaves
    algorithm = build(params).algorithm
    assert live.can_prune(algorithm)
    rng = np.random.default_rng(5)
    compared = pruned = 0
    for draw in range(60):
        bought = rng.choice(algorithm.n_items_, 1 + draw % 6, replace=False)
        row = sp.csr_matrix((np.ones(len(bought), np.float32), np.sort(bought), [0, len(bought)]), shape=(1, algorithm.n_items_))
        allowed = None if draw % 3 else rng.random(algorithm.n_items_) < 0.6
        exclude_seen = draw % 4 != 1  # include_purchased asks for the history too
        full = algorithm.scores(row)[0].astype(np.float64)
        if exclude_seen:
            full[row.indices] = -np.inf
        if allowed is not None:
            full[~allowed] = -np.inf
        order = np.lexsort((np.arange(len(full)), -full))[: N + 1]
        found = live.row_top(algorithm, row, N, exclude_seen, allowed)
        if found is None:
            continue  # the bound left too many items: scored in full
        pruned += 1
        if np.isclose(full[order[N - 1]], full[order[N]], rtol=1e-5, atol=1e-7):
            continue  # two items tied at the cut
        assert found[0][0].tolist() == order[:N].tolist()
        np.testing.assert_allclose(found[1][0], full[order[:N]], rtol=1e-5, atol=1e-7)
        compared += 1
    assert pruned == 60 and compared >= 30, compared


def long_tail_store(customers: int = 2000, items: int = 1500) -> sp.csr_matrix:
    """Item popularity falling as 1/rank, as in real stores, and eight taste groups."""
    rng = np.random.default_rng(3)
    popularity = 1.0 / np.arange(1, items + 1)
    group, item_group = rng.integers(0, 8, customers), rng.integers(0, 8, items)
    rows, columns = [], []
    for customer in range(customers):
        weights = popularity * np.where(item_group == group[customer], 6.0, 1.0)
        bought = rng.choice(items, 1 + rng.poisson(12), replace=False, p=weights / weights.sum())
        rows += [customer] * len(bought)
        columns += bought.tolist()
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, columns)), shape=(customers, items))


def test_the_bound_leaves_a_small_share_of_a_long_tailed_catalogue():
    """With the product's head (64 directions) of a 200-direction basis, live answers score under
    a quarter of the items in full (row_top answers instead of handing back to full scoring)."""
    matrix = long_tail_store()
    algorithm = create_algorithm("graph-filter", {"rank": 200, "sharpening": 0.7}).fit(matrix)
    rng = np.random.default_rng(8)
    answered = 0
    for customer in rng.choice(matrix.shape[0], 40, replace=False):
        row = matrix[customer]
        found = live.row_top(algorithm, row, N, True, None)
        if found is None:
            continue
        answered += 1
        full = algorithm.scores(row)[0]
        full[row.indices] = -np.inf
        assert set(found[0][0].tolist()) == set(top_k(full[None], N)[0][0].tolist())
    assert answered >= 35, answered
