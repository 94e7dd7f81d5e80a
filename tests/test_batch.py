"""Batch scoring: block top-k, filters, exclusion and every output format, with known answers."""

import json

import numpy as np
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from recommender.algorithms import create_algorithm
from recommender.catalog import Catalog
from recommender.model import Model
from recommender.ranking import _top_k_exact, top_k
from recommender.vocabulary import IdVocabulary
from tests.conftest import two_group_matrix
from training.batch import score_all


@pytest.mark.parametrize("columns", [5000, 12345, 40981])
def test_block_top_k_equals_exact_selection_with_ties_and_exclusions(columns):
    rng = np.random.default_rng(columns)
    scores = rng.standard_normal((60, columns)).astype(np.float32)
    scores[:10] = np.round(scores[:10])  # heavy ties: the exact fallback must kick in
    scores[10:15, : columns - 5] = -np.inf  # fewer finite scores than k
    scores[15, rng.integers(0, columns, 500)] = -np.inf
    fast, fast_scores = top_k(scores, 20)
    exact, exact_scores = _top_k_exact(scores, 20)
    np.testing.assert_array_equal(fast, exact)
    np.testing.assert_array_equal(fast_scores, exact_scores)
    assert (fast[10:15, 5:] == -1).all()


@pytest.mark.parametrize(("head_share", "one_by_one"), [(0.05, False), (0.4, False), (1.0, False), (0.4, True)])
def test_norm_pruned_search_equals_scoring_every_item(monkeypatch, head_share, one_by_one):
    import scipy.sparse as sp

    from recommender.algorithms import inner_product_search
    from recommender.algorithms.inner_product_search import NormOrderedItems

    monkeypatch.setattr(inner_product_search, "ROW_BLOCK", 256)  # a dozen blocks for top_k_each

    rng = np.random.default_rng(3)
    # Skewed norms, like popular items in a factor model, so some customers stop early
    # and others need the tail.
    items = (rng.standard_normal((3000, 16)) * rng.lognormal(0, 0.7, (3000, 1))).astype(np.float32)
    vectors = rng.standard_normal((200, 16)).astype(np.float32)
    vectors[:5] = 0.0  # all-zero customers: every score ties at 0
    seen = sp.random(200, 3000, density=0.01, format="csr", random_state=4, dtype=np.float32)
    search = NormOrderedItems(items, head_share)
    found, found_scores = (search.top_k_each if one_by_one else search.top_k)(vectors, 20, seen)
    scores = vectors @ items.T
    scores[np.repeat(np.arange(200), np.diff(seen.indptr)), seen.indices] = -np.inf
    expected, expected_scores = _top_k_exact(scores, 20)
    np.testing.assert_allclose(found_scores, expected_scores, rtol=1e-5, atol=1e-6)
    # Which of several items tied at the cut is kept is unspecified; everything above it is exact.
    above_cut = expected_scores > expected_scores[:, -1:] + 1e-5
    np.testing.assert_array_equal(np.where(above_cut, found, -2), np.where(above_cut, expected, -2))
    assert not (set(found[7].tolist()) & set(seen[7].indices.tolist()))


def test_one_customer_at_a_time_search_never_reads_items_whose_norm_cannot_reach_the_top(monkeypatch):
    from recommender.algorithms import inner_product_search
    from recommender.algorithms.inner_product_search import NormOrderedItems

    rng = np.random.default_rng(5)
    # 300 items of norm about 10 along the customer's direction, 2,700 of norm at most 1.
    strong = np.hstack([np.full((300, 1), 10.0), rng.standard_normal((300, 3)) * 0.1])
    weak = rng.standard_normal((2700, 4))
    weak /= np.linalg.norm(weak, axis=1, keepdims=True) * rng.uniform(1.0, 2.0, (2700, 1))
    search = NormOrderedItems(np.vstack([strong, weak]).astype(np.float32))
    search.factors[512:] = np.nan  # were they read, NaN scores would enter the answer
    customer = np.array([[1.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    # After the strong items' blocks the 10th best (about 10) beats every weak item's reach (at most 1).
    for block in (256, 64):
        monkeypatch.setattr(inner_product_search, "ROW_BLOCK", block)
        found, found_scores = search.top_k_each(customer, 10, None)
        assert (found < 300).all() and np.isfinite(found_scores).all() and (found_scores > 9).all()
    monkeypatch.setattr(inner_product_search, "ROW_BLOCK", 1024)  # one block holds the NaNs: read, they spoil it
    found, found_scores = search.top_k_each(customer, 10, None)
    assert not (np.isfinite(found_scores).all() and (found < 300).all())


@pytest.fixture
def model():
    """The two-taste-group store with awkward ids (quotes, unicode) and two categories."""
    matrix = two_group_matrix()
    customers = IdVocabulary(np.array([f'c"{i:02d}' for i in range(20)]))
    items = IdVocabulary(np.array([f"ü-{i}\\" for i in range(10)]))
    catalog = Catalog(items.ids.copy(), np.array(["A"] * 5 + ["B"] * 5))
    algorithm = create_algorithm("als", {"factors": 2, "regularization": 0.1, "iterations": 15, "alpha": 1.0}).fit(matrix)
    return Model(algorithm, customers, items, matrix, catalog)


def read(path):
    if path.suffix == ".csv":
        return pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(column_types={"customer_id": "string", "item_id": "string"})).to_pylist()
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    return [json.loads(line) for line in path.open(encoding="utf-8")]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_every_format_holds_the_same_rows_and_awkward_ids_survive(model, tmp_path, suffix):
    manifest = score_all(model, tmp_path / f"out{suffix}", n=2, chunk_rows=7, threads=2)
    rows = read(tmp_path / f"out{suffix}")
    assert manifest["rows"] == len(rows) == 40
    assert rows[0]["customer_id"] == 'c"00' and rows[0]["item_id"].startswith("ü-")
    score_all(model, tmp_path / "reference.parquet", n=2, threads=1)  # one worker, one big chunk
    reference = read(tmp_path / "reference.parquet")
    assert [(r["customer_id"], r["item_id"], r["rank"]) for r in rows] == [(r["customer_id"], r["item_id"], r["rank"]) for r in reference]
    np.testing.assert_allclose([r["score"] for r in rows], [r["score"] for r in reference], rtol=1e-6)


def test_purchases_are_excluded_unless_asked_and_stay_in_the_taste_group(model, tmp_path):
    score_all(model, tmp_path / "x.csv", n=2)
    rows = read(tmp_path / "x.csv")
    assert len(rows) == 40
    for row in rows:
        customer = model.customers.index(row["customer_id"])
        item = model.items.index(row["item_id"])
        assert item not in model.history[customer].indices
        assert (item < 5) == (customer < 10)
    score_all(model, tmp_path / "all.csv", n=10, exclude_purchased=False)
    assert len(read(tmp_path / "all.csv")) == 200


def test_category_and_include_filters_restrict_the_candidates(model, tmp_path):
    score_all(model, tmp_path / "b.csv", n=3, category="b")
    assert {r["item_id"] for r in read(tmp_path / "b.csv")} <= set(model.items.ids[5:])
    include = [str(model.items.ids[i]) for i in (1, 6)]
    score_all(model, tmp_path / "inc.jsonl", n=3, include=include)
    rows = read(tmp_path / "inc.jsonl")
    assert {r["item_id"] for r in rows} <= set(include)
    assert all(r["rank"] <= 2 for r in rows)


def test_listed_customers_in_any_order_are_scored_from_their_own_history(model, tmp_path):
    listed = [str(model.customers.ids[i]) for i in (0, 3, 1, 2, 4, 12, 11)] + ["stranger"]
    score_all(model, tmp_path / "listed.csv", n=2, customers=listed, chunk_rows=5)
    rows = read(tmp_path / "listed.csv")
    assert [r["customer_id"] for r in rows[::2]] == listed
    for row in rows[:-2]:
        customer, item = model.customers.index(row["customer_id"]), model.items.index(row["item_id"])
        assert item not in model.history[customer].indices and (item < 5) == (customer < 10)


def test_short_lists_are_topped_up_from_popular_items_as_the_api_does(tmp_path):
    from recommender.topn.reasons import POPULAR_REASON
    from tests.test_artifacts import build_model

    model = build_model()  # item-kNN scores only a customer's co-bought items: lists come out short
    listed = ["c00", "c13", "stranger"]
    score_all(model, tmp_path / "full.csv", n=7, customers=listed)
    rows = read(tmp_path / "full.csv")
    for customer in listed:
        scored = [r["item_id"] for r in rows if r["customer_id"] == customer]
        answer = model.recommend(customer, 7).items
        assert scored == [r.item_id for r in answer]
        assert len(scored) == 7 and not set(scored) & set(model.purchased(customer))
        # Each row says where it came from, as the API's reason does; a popular item's score is its buyers.
        sources = [r["source"] for r in rows if r["customer_id"] == customer]
        assert sources == ["popular" if r.reason == POPULAR_REASON else "personalised" for r in answer]
        for row in rows:
            if row["customer_id"] == customer and row["source"] == "popular":
                assert row["score"] == model.popular.buyers[model.items.get(row["item_id"])]
    assert {r["source"] for r in rows if r["customer_id"] == "stranger"} == {"popular"}
    assert {r["source"] for r in rows if r["customer_id"] == "c00"} == {"personalised", "popular"}
