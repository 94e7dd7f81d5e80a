"""The id-level model: filters, fallbacks, new purchases, reasons."""

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.algorithms import create_algorithm
from recommender.catalog import Catalog
from recommender.model import Model
from recommender.topn import REMEMBERED, SCORED, TOP_LISTS, TopLists, compute_top_lists, rank_rows
from recommender.vocabulary import IdVocabulary
from tests.test_artifacts import build_model


def ids(result):
    return [r.item_id for r in result.items]


def test_known_customer_gets_their_group_without_purchases():
    model = build_model()
    result = model.recommend("c00", 2)  # bought i0, i1, i2
    assert result.source == "personalised"
    assert set(ids(result)) == {"i3", "i4"}
    assert all(r.reason.startswith("because you bought Item") for r in result.items)
    assert all(r.category == "A" for r in result.items)


def test_unknown_customer_gets_popular_items():
    result = build_model().recommend("stranger", 3)
    assert result.source == "popular" and len(result.items) == 3
    assert all(r.reason == "popular with other customers" for r in result.items)


def test_new_events_fold_in_without_retraining():
    model = build_model()
    result = model.recommend("stranger", 3, new_events=[("i7", 1.0), ("i8", 1.0)])
    assert result.source == "personalised"
    assert set(ids(result)) <= {"i5", "i6", "i9"}
    after = model.recommend("c00", 2, new_events=[("i3", 1.0)])
    assert "i3" not in ids(after)


def test_an_answer_scored_from_new_events_is_reused_until_the_next_event():
    model = build_model()
    scored = []
    real_recommend = model.algorithm.recommend
    model.algorithm.recommend = lambda *args, **kwargs: scored.append(1) or real_recommend(*args, **kwargs)
    first = model.recommend("c00", 2, new_events=[("i3", 1.0)])
    again = model.recommend("c00", 2, new_events=[("i3", 1.0)])
    assert ids(again) == ids(first) and len(scored) == 1  # the same request is not scored twice
    later = model.recommend("c00", 2, new_events=[("i3", 1.0), ("i4", 1.0)])
    assert len(scored) == 2 and not {"i3", "i4"} & set(ids(later))  # a new event is a new key: never stale
    assert (first.origin, again.origin, later.origin) == (SCORED, REMEMBERED, SCORED)
    other_filters = model.recommend("c00", 2, new_events=[("i3", 1.0)], exclude=["i4"])
    assert len(scored) == 3 and "i4" not in ids(other_filters)


def test_unknown_items_in_events_are_ignored_for_scoring():
    assert model_ids_equal(build_model(), [("never-seen", 1.0)])


def model_ids_equal(model, events):
    return ids(model.recommend("c00", 3, new_events=events)) == ids(model.recommend("c00", 3))


def test_filters_include_exclude_category_and_include_purchased():
    model = build_model()
    assert ids(model.recommend("c00", 5, exclude=["i3"]))[0] == "i4"
    assert set(ids(model.recommend("c00", 2, include=["i4", "i9"]))) == {"i4", "i9"}
    assert {r.category for r in model.recommend("c00", 3, category="b").items} == {"B"}
    assert "i0" in ids(model.recommend("c00", 5, include_purchased=True))


def test_short_lists_are_topped_up_from_popular_items():
    model = build_model()
    result = model.recommend("c00", 7)  # only 7 unbought items exist; kNN scores 2 of them
    assert len(result.items) == 7 and len(set(ids(result))) == 7
    assert not {"i0", "i1", "i2"} & set(ids(result))


@pytest.mark.parametrize("cached", [False, True])
def test_items_nothing_bought_points_to_are_popular_not_personalised(cached):
    model = build_model()  # item-kNN: group A's purchases point to no item of group B (score 0)
    if cached:
        model.top_lists = compute_top_lists(model.algorithm, model.history, 5)
        assert model.top_lists.items[0].tolist()[2:] == [-1, -1, -1]  # i3, i4, then nothing with evidence
    popular_b = [item for item in ids(model.recommend("stranger", 10)) if item >= "i5"]
    result = model.recommend("c00", 5)  # bought i0, i1, i2
    assert result.source == "personalised" and [r.position for r in result.items] == [1, 2, 3, 4, 5]
    assert set(ids(result)[:2]) == {"i3", "i4"}
    assert all(r.reason.startswith("because you bought Item") and r.score > 0 for r in result.items[:2])
    assert ids(result)[2:] == popular_b[:3]
    assert all(r.reason == "popular with other customers" and not r.because for r in result.items[2:])
    nothing_points_there = model.recommend("c00", 3, category="b")
    assert nothing_points_there.source == "popular" and ids(nothing_points_there) == popular_b[:3]
    # Batch scoring and Spark take the same path.
    ranked = rank_rows(model.algorithm, model.popular, model.history[[0]], np.array([0]), 5)
    assert ranked.topped_up[0].tolist() == [False, False, True, True, True]
    assert [model.items.ids[i] for i in ranked.items[0]] == ids(result)


def test_an_item_nobody_bought_with_anything_has_popular_items_instead():
    from serving.lookups import similar_items

    bought = [[0], [0, 1], [0, 1, 2], [4, 5], [5], [4, 5], [5], [3]]  # item 3: one buyer, who bought nothing else
    rows = [r for r, items in enumerate(bought) for _ in items]
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, [i for items in bought for i in items])), shape=(8, 6))
    model = Model(create_algorithm("item-knn").fit(matrix), IdVocabulary([f"c{i}" for i in range(8)]),
                  IdVocabulary([f"i{i}" for i in range(6)]), matrix, Catalog(np.array([f"Item {i}" for i in range(6)]), np.array(["A"] * 6)))
    source, found = similar_items(model, "i3", 3)
    assert source == "popular" and [r.item_id for r in found] == ["i5", "i0", "i1"]
    assert similar_items(model, "i0", 3)[0] == "similar"


def test_similar_items_never_bought_together_are_popular_not_similar():
    model = build_model()
    similar = model.similar_items("i0", 6)
    assert {r.item_id for r in similar[:4]} == {"i1", "i2", "i3", "i4"}
    assert all(r.reason == "often bought with Item 0" and r.score > 0 for r in similar[:4])
    assert all(r.item_id >= "i5" and r.reason == "popular with other customers" for r in similar[4:])
    assert [r.position for r in similar] == [1, 2, 3, 4, 5, 6]


def test_rank_lists_candidates_nothing_bought_points_to_as_popular_items():
    bought = [[0], [0, 1], [0, 1, 2], [4, 5], [5], [4, 5], [5]]  # buyers: item 5 four, item 4 two, item 3 none
    rows = [r for r, items in enumerate(bought) for _ in items]
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, [i for items in bought for i in items])), shape=(7, 6))
    catalog = Catalog(np.array([f"Item {i}" for i in range(6)]), np.array(["A"] * 6))
    model = Model(create_algorithm("item-knn").fit(matrix), IdVocabulary([f"c{i}" for i in range(7)]),
                  IdVocabulary([f"i{i}" for i in range(6)]), matrix, catalog)
    result = model.rank("c0", ["i3", "i4", "i1", "i5"])  # c0 bought i0; of these, only i1 was bought with it
    assert ids(result) == ["i1", "i5", "i4", "i3"] and result.source == "personalised"
    assert result.items[0].reason == "because you bought Item 0"
    assert all(r.reason == "popular with other customers" and not r.because for r in result.items[1:])
    assert [r.score for r in result.items[1:]] == [4.0, 2.0, 0.0]  # their buyers, as popular top-ups show
    assert model.rank("c0", ["i4", "i5"]).source == "popular"  # nothing c0 bought points to either


def test_rank_orders_candidates_and_keeps_unknown_last():
    result = build_model().rank("c00", ["i9", "bogus", "i3"])
    assert ids(result) == ["i3", "i9", "bogus"]


def test_similar_items_and_explain():
    model = build_model()
    similar = model.similar_items("i0", 3)
    assert {r.item_id for r in similar} <= {"i1", "i2", "i3", "i4"}
    assert model.explain("c00", "i3")[0][0] in {"i1", "i2"}


def answers(result):
    """Items with their reasons, less those tied with the last item's score: which of several
    items tied at the cut-off makes the list is arbitrary (though repeatable)."""
    cut = result.items[-1].score
    return len(result.items), [(r.item_id, r.reason, r.because) for r in result.items if r.score != cut]


@pytest.mark.parametrize(
    "algorithm, params",
    [
        ("als", {"factors": 2, "alpha": 1.0, "regularization": 0.1}),
        ("bpr", {"factors": 4, "iterations": 20}),
        ("graph-filter", {"rank": 3}),
        ("graph-filter", {"rank": 3, "sharpening": 0.0}),
        ("item-knn", {}),
    ],
)
def test_cached_top_lists_answer_like_live_scoring(tmp_path, algorithm, params):
    from recommender.artifacts import load_model, save_model

    live = build_model(algorithm, params)
    cached = build_model(algorithm, params)
    cached.top_lists = compute_top_lists(cached.algorithm, cached.history, 4)
    cached = load_model(save_model(cached, tmp_path))
    assert cached.top_lists.items.shape == (20, 4) and cached.top_lists.reasons.shape == (20, 4, 2)
    for customer in ("c00", "c04", "c15"):
        for kwargs in ({}, {"exclude": ["i3"]}, {"category": "B"}, {"include": ["i4", "i9"]}, {"include_purchased": True}):
            # Same items, same order, and the same purchases named as reasons.
            assert answers(cached.recommend(customer, 3, **kwargs)) == answers(live.recommend(customer, 3, **kwargs)), (customer, kwargs)
        assert answers(cached.recommend(customer, 3, with_reasons=False))[1] == [
            (item_id, "matches your purchase history", []) for item_id, *_ in answers(live.recommend(customer, 3))[1]
        ]
    assert (cached.recommend("c00", 3).origin, live.recommend("c00", 3).origin) == (TOP_LISTS, SCORED)
    # A new purchase bypasses the cache: the bought item disappears at once.
    first = ids(cached.recommend("c00", 1))[0]
    assert first not in ids(cached.recommend("c00", 3, new_events=[(first, 1.0)]))


def test_a_model_whose_reasons_cannot_be_batched_explains_its_cached_answers_live(tmp_path):
    from recommender.algorithms.graph_filter import GraphFilter
    from recommender.artifacts import load_model, save_model

    class Unbatched(GraphFilter):
        def top_contributors(self, *args, **kwargs):
            raise NotImplementedError("this algorithm attributes one customer at a time")

    live = build_model("graph-filter", {"rank": 3})
    cached = build_model("graph-filter", {"rank": 3})
    cached.algorithm = Unbatched(cached.algorithm.config).fit(cached.history)
    cached.top_lists = compute_top_lists(cached.algorithm, cached.history, 4)
    cached = load_model(save_model(cached, tmp_path))
    assert cached.top_lists.reasons is None and cached.top_lists.items.shape == (20, 4)
    result = cached.recommend("c00", 2)
    assert answers(result) == answers(live.recommend("c00", 2))
    assert all(r.reason.startswith("because you bought Item") for r in result.items)


def test_rank_never_names_an_item_as_its_own_reason():
    model = build_model()
    for result in (model.rank("c00", ["i1", "i3"]), model.rank("c00", ["i3", "i5"], new_events=[("i3", 1.0)])):
        for item in result.items:
            assert item.item_id not in item.because, (item.item_id, item.reason)
    assert set(model.rank("c00", ["i1"]).items[0].because) <= {"i0", "i2"}  # a bought item is explained by the others


def test_a_category_no_item_has_is_an_error_naming_the_known_ones():
    from recommender.errors import UnknownCategoryError

    with pytest.raises(UnknownCategoryError, match="no item has category 'Toys'; known categories: A, B"):
        build_model().recommend("c00", 3, category="Toys")


def two_components(algorithm: str) -> Model:
    """Customers who buy within one of two item groups that no customer mixes: EASE weighs
    the other group's items exactly 0, and some of its own group's below 0."""
    rng = np.random.default_rng(0)
    rows, columns = [], []
    for customer in range(60):
        first = 0 if customer < 40 else 8
        for item in rng.choice(8, size=rng.integers(2, 5), replace=False):
            rows.append(customer)
            columns.append(first + item)
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, columns)), shape=(60, 16))
    matrix.sum_duplicates()
    catalog = Catalog(np.array([f"Item {i}" for i in range(16)]), np.array((["A"] * 4 + ["B"] * 4) * 2))
    return Model(create_algorithm(algorithm).fit(matrix), IdVocabulary([f"c{i:02d}" for i in range(60)]),
                 IdVocabulary([f"i{i:02d}" for i in range(16)]), matrix, catalog)


@pytest.mark.parametrize("k", [4, 6, 14])
def test_cached_lists_of_any_length_answer_like_live_scoring_with_zero_and_negative_scores(k):
    live = two_components("ease")
    items, scores = live.algorithm.recommend(live.history[[50]], 16)
    assert (scores[0][items[0] >= 0] == 0).any() and (scores[0][items[0] >= 0] < 0).any()  # c50 has both
    cached = two_components("ease")
    cached.top_lists = compute_top_lists(cached.algorithm, cached.history, k)
    for customer in ("c00", "c05", "c50", "c55"):
        for n in (3, 6, 10, 14):
            for kwargs in ({}, {"category": "A"}, {"exclude": ["i01", "i09"]}):
                expected = live.recommend(customer, n, **kwargs)
                assert answers(cached.recommend(customer, n, **kwargs)) == answers(expected), (customer, n, kwargs)
                assert all(r.score > 0 or r.reason == "popular with other customers" for r in expected.items)


def test_a_list_saved_with_zero_scores_is_cut_when_read():
    """Top lists of models trained before zero-score items were cut at training."""
    live = build_model()
    old = build_model()
    items, scores = old.algorithm.recommend(old.history, 6)  # item-kNN: zeros after each customer's two
    old.top_lists = TopLists(items.astype(np.int32), scores, compute_top_lists(old.algorithm, old.history, 6).reasons)
    assert (old.top_lists.scores[0] == 0).sum() == 4
    for kwargs in ({}, {"category": "b"}, {"exclude": ["i3"]}):
        result = old.recommend("c00", 5, **kwargs)
        assert answers(result) == answers(live.recommend("c00", 5, **kwargs)), kwargs
        assert all(r.score > 0 or r.reason == "popular with other customers" for r in result.items), kwargs


def test_a_list_without_stored_reasons_is_topped_up_when_explained_live(tmp_path):
    from recommender.algorithms.neighbours import ItemKNN

    class Unbatched(ItemKNN):
        def top_contributors(self, *args, **kwargs):
            raise NotImplementedError("this algorithm attributes one customer at a time")

    live = build_model()
    cached = build_model()
    cached.algorithm = Unbatched(cached.algorithm.config).fit(cached.history)
    cached.top_lists = compute_top_lists(cached.algorithm, cached.history, 4)
    assert cached.top_lists.reasons is None
    for kwargs in ({}, {"category": "b"}):
        result = cached.recommend("c00", 5, **kwargs)
        assert len(result.items) == 5 and answers(result) == answers(live.recommend("c00", 5, **kwargs)), kwargs


@pytest.fixture
def viewing_store(tmp_path):
    """Six customers bought i0, i1 and i2 together; "v" bought i0 and only viewed (and clicked) i1."""
    from recommender.interactions import Interactions
    from recommender.purchases import load_purchases

    lines = ["customer_id,item_id,event_type"]
    lines += [f"c{c},i{i},purchase" for c in range(6) for i in range(3)]
    lines += ["v,i0,purchase", "v,i1,view", "v,i1,click", "w,i1,view", "w,i1,purchase", "w,i3,purchase"]
    (tmp_path / "events.csv").write_text("\n".join(lines) + "\n")
    interactions = Interactions.from_log(load_purchases(tmp_path / "events.csv"))
    catalog = Catalog(np.array([f"Item {i}" for i in interactions.items.ids]), np.array(["A"] * len(interactions.items)))
    algorithm = create_algorithm("item-knn").fit(interactions.matrix)
    return Model(algorithm, interactions.customers, interactions.items, interactions.matrix, catalog, browsed=interactions.browsed)


def test_reasons_say_viewed_of_what_was_only_viewed(viewing_store, tmp_path):
    from recommender.artifacts import load_model, save_model

    model = viewing_store
    # Only v's i1 has no purchase among its events (w viewed i1, then bought it).
    assert {(model.customers.ids[c], model.items.ids[i]) for c, i in zip(*model.browsed.nonzero())} == {("v", "i1")}
    live = model.recommend("v", 1)
    assert ids(live) == ["i2"] and live.items[0].because == ["i0", "i1"]
    assert live.items[0].reason == "because you bought Item i0 and viewed Item i1"
    model.top_lists = compute_top_lists(model.algorithm, model.history, 3)
    cached = model.recommend("v", 1)
    assert cached.origin == TOP_LISTS and cached.items[0].reason == live.items[0].reason
    assert model.recommend("c0", 1).items[0].reason.startswith("because you bought")  # bought: never "viewed"
    loaded = load_model(save_model(model, tmp_path / "models"))
    assert loaded.recommend("v", 1).items[0].reason == live.items[0].reason
    # A purchase since the model makes the viewed item a bought one.
    assert model.recommend("v", 1, new_events=[("i1", 1.0)]).items[0].reason == "because you bought Item i1 and Item i0"  # i1 now weighs more


def test_new_views_are_named_as_viewed(viewing_store):
    model = viewing_store
    answer = model.recommend("stranger", 1, new_events=[("i1", 0.1), ("i0", 1.0)], viewed=["i1"])
    assert ids(answer) == ["i2"] and answer.items[0].reason == "because you bought Item i0 and viewed Item i1"
    # Viewed since the model, but bought in training: still bought.
    assert model.recommend("c0", 1, new_events=[("i9", 0.1)], viewed=["i0"]).items[0].reason.startswith("because you bought Item i")
    ranked = model.rank("stranger", ["i2"], new_events=[("i1", 0.1)], viewed=["i1"])
    assert ranked.items[0].reason == "because you viewed Item i1"


def test_a_cell_is_bought_while_its_purchases_outweigh_its_returns():
    from recommender.interactions import Interactions
    from recommender.purchases import PurchaseLog

    # a bought x 200 times (more than a small integer type counts) and viewed y; b bought x,
    # returned it, then viewed it; c bought y twice and returned one.
    rows = [("a", "x", 1.0, True)] * 200 + [("a", "y", 0.1, False), ("b", "x", 1.0, True), ("b", "x", -1.0, True), ("b", "x", 0.1, False),
                                            ("c", "y", 2.0, True), ("c", "y", -1.0, True)]
    customers, items = IdVocabulary(["a", "b", "c"]), IdVocabulary(["x", "y"])
    log = PurchaseLog(customers, items, customers.lookup([r[0] for r in rows]).astype(np.int32), items.lookup([r[1] for r in rows]).astype(np.int32),
                      np.array([r[2] for r in rows], dtype=np.float32), bought=np.array([r[3] for r in rows]))
    interactions = Interactions.from_log(log)
    assert np.allclose(interactions.matrix.toarray(), [[200.0, 0.1], [0.1, 0.0], [0.0, 1.0]])
    assert interactions.browsed.toarray().tolist() == [[0, 1], [1, 0], [0, 0]]


def test_rank_takes_new_events_as_any_iterable(viewing_store):
    ranked = viewing_store.rank("stranger", ["i2"], new_events=iter([("i0", 1.0)]))
    assert ranked.source == "personalised" and ranked.items[0].reason == "because you bought Item i0"


def test_the_reason_sentence_names_each_item_with_its_own_verb():
    from recommender.topn.reasons import because_sentence

    names = ["A", "B", "C"]
    assert because_sentence(names, [0, 1]) == "because you bought A and B"
    assert because_sentence(names, [0, 1], frozenset({2})) == "because you bought A and B"  # C viewed, not named
    assert because_sentence(names, [1, 0], frozenset({1})) == "because you viewed B and bought A"
    assert because_sentence(names, [0, 1, 2], frozenset({1, 2})) == "because you bought A and viewed B and C"
    assert because_sentence(names, [], None) == "matches your purchase history"
    assert because_sentence(names, [], frozenset({2})) == "matches your history"  # not all of it was bought
