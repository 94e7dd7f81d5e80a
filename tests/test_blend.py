"""The blend of two algorithms: its formula, a store where it beats both parts, and the
shortcut that scores its weights (the algorithm contract itself is in test_algorithms.py)."""

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.algorithms import create_algorithm, parse_params
from recommender.evaluation import evaluate, run_blend_evaluations, run_evaluation
from recommender.evaluation.metrics import accuracy_at_k
from tests.algorithm_contract import history

KNN_AND_POPULAR = {"first": "item-knn", "second": "popular"}


def two_signal_store(pair_customers: int = 10):
    """A store where each of item-kNN and popularity finds half the answers, and a blend all.

    Item 0 is bought alone by 50 customers (popular). Ten pairs (1, 2), (3, 4), ...: three
    customers buy each pair, and three buy its first item with one of 30 other items, which
    are bought in threes besides (so item-kNN has a full list for every judged customer).
    Judged: ten customers who bought a pair's first item want its second (item-kNN ranks it
    first; popularity ranks item 0 first, then the others), and ten who bought one of the 30
    want item 0 (popularity ranks it first; item-kNN ranks the other two of its threes first).
    ``pair_customers`` above 10 judges more customers of the pairs (the first pairs again).
    """
    others = list(range(21, 51))
    baskets = [[0]] * 50
    for pair in range(10):
        first, second = 1 + 2 * pair, 2 + 2 * pair
        baskets += [[first, second]] * 3 + [[first, others[(3 * pair + k) % 30]] for k in range(3)]
    baskets += [[others[j], others[(j + 1) % 30], others[(j + 2) % 30]] for j in range(30)]
    judged = len(baskets)
    baskets += [[1 + 2 * (pair % 10)] for pair in range(pair_customers)] + [[others[j]] for j in range(10)]
    wanted = [2 + 2 * (pair % 10) for pair in range(pair_customers)] + [0] * 10
    rows = np.repeat(np.arange(len(baskets)), [len(b) for b in baskets])
    train = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, np.concatenate(baskets))), shape=(len(baskets), 51))
    targets = sp.csr_matrix((np.ones(len(wanted), np.float32), (np.arange(judged, judged + len(wanted)), wanted)), shape=train.shape)
    return train, targets


def test_scores_are_the_parts_standardised_and_mixed():
    train, _ = two_signal_store()
    blend = create_algorithm("blend", {**KNN_AND_POPULAR, "weight": 0.25}).fit(train)
    knn, popular = create_algorithm("item-knn").fit(train), create_algorithm("popular").fit(train)
    row = history([1, 21], n_items=51)
    a, b = knn.scores(row)[0].astype(np.float64), popular.scores(row)[0].astype(np.float64)
    np.testing.assert_allclose(blend.scores(row)[0], 0.75 * a / a.std() + 0.25 * b / b.std(), rtol=1e-5)
    # Popularity gives every purchase nothing, so the reasons are item-kNN's, scaled as its score.
    asked = np.array([2, 22, 0])
    np.testing.assert_allclose(blend.contributions(row, asked), 0.75 / a.std() * knn.contributions(row, asked), rtol=1e-5)
    # A row a part cannot tell apart (no purchase: item-kNN scores all 0) takes nothing from it.
    np.testing.assert_allclose(blend.scores(history([], n_items=51))[0], 0.25 * b / b.std(), rtol=1e-5)


def test_on_a_store_of_two_signals_the_blend_finds_what_each_part_finds():
    train, targets = two_signal_store()
    ndcg = {name: evaluate(create_algorithm(name).fit(train), train, targets, (2,))["ndcg@2"] for name in ("item-knn", "popular")}
    assert ndcg == {"item-knn": 0.5, "popular": 0.5}
    # At weight 0.3 each judged customer's answer is first: a pair's second item at
    # 0.7·3.92 + 0.3·0.47 against item 0's 0.3·7.77; item 0 at 2.33 against the threes' 1.98.
    fitted = {w: create_algorithm("blend", {**KNN_AND_POPULAR, "weight": w}).fit(train) for w in (0.1, 0.3, 0.5)}
    figures = {w: evaluate(model, train, targets, (2,)) for w, model in fitted.items()}
    assert figures[0.3]["ndcg@2"] == pytest.approx(1.0)
    # At 0.5 item 0 comes second for the pairs' customers: found, one place down.
    assert figures[0.5]["recall@2"] == 1.0 and figures[0.5]["ndcg@2"] == pytest.approx(0.5 + 0.5 / np.log2(3))
    assert figures[0.1]["ndcg@2"] == pytest.approx(0.5)  # too little popularity: item 0 stays third


def test_the_weights_shortcut_gives_what_each_weight_gives_alone():
    train, targets = two_signal_store()
    blend = create_algorithm("blend", KNN_AND_POPULAR).fit(train)
    weights = [0.1, 0.3, 0.5, 0.9]
    runs = run_blend_evaluations(blend, train, targets, 2, weights)
    for weight in weights:
        blend.config.weight = weight
        alone = run_evaluation(blend, train, targets, 2)
        np.testing.assert_array_equal(runs[weight].recommended, alone.recommended)
    assert accuracy_at_k(runs[0.3].hits, runs[0.3].n_relevant, 2)["ndcg"] == pytest.approx(1.0)


def test_parts_are_named_and_their_parameters_checked():
    # From the command line a part's parameters are a JSON object.
    assert parse_params("blend", ["second=als", 'second_params={"factors": 8}']) == {"second": "als", "second_params": {"factors": 8}}
    with pytest.raises(ValueError, match="JSON object"):
        parse_params("blend", ["first_params=8"])
    train, _ = two_signal_store()
    with pytest.raises(ValueError, match="other algorithms"):
        create_algorithm("blend", {"first": "blend"}).fit(train)
    with pytest.raises(ValueError, match="no parameter 'factor'"):
        create_algorithm("blend", {"second": "als", "second_params": {"factor": 8}}).fit(train)
    with pytest.raises(ValueError, match="between 0 and 1"):
        create_algorithm("blend", {"weight": 1.5}).fit(train)


def test_a_part_that_chose_settings_while_fitting_is_refitted_with_them():
    train, _ = two_signal_store()
    blend = create_algorithm("blend", {"first": "graph-filter", "second": "item-knn"}).fit(train)
    chosen = blend.first_.fitted_settings()
    assert blend.fitted_settings() == {"first_params": {"rank": chosen["rank"], "sharpening": chosen["sharpening"]}}


def test_a_blend_hands_its_parts_start_states_on_by_slot():
    """The automatic choice refits a winning blend from its trial's state: each part starts
    from its own (graph-filter's basis, under "second."); item-kNN has none."""
    train, _ = two_signal_store()
    params = {"first": "item-knn", "second": "graph-filter", "second_params": {"rank": 4, "sharpening": 0.0}}
    trial = create_algorithm("blend", params).fit(train)
    state = trial.start_state()
    assert list(state) == ["second.singular_vectors"] and state["second.singular_vectors"].shape == (51, 4)
    refit = create_algorithm("blend", params)
    refit.start_from(state)
    refit.fit(train)
    assert refit.warm_started_ and refit.second_.warm_started_ and not refit.first_.warm_started_
    # Started from the very basis, one product keeps its span.
    overlap = np.linalg.svd(trial.second_.singular_vectors_.T @ refit.second_.singular_vectors_, compute_uv=False)
    np.testing.assert_allclose(overlap, 1.0, atol=1e-3)
    assert not create_algorithm("blend", params).fit(train).warm_started_


def test_the_top_lists_reasons_reuse_the_spreads_their_scoring_just_computed(monkeypatch):
    from recommender.algorithms.blend import RecentSpreads

    train, _ = two_signal_store()
    blend = create_algorithm("blend", {**KNN_AND_POPULAR, "weight": 0.3}).fit(train)
    customers = np.arange(train.shape[0])
    items, _ = blend.recommend(train, 3, customers=customers)
    scored = []
    for part in blend.parts:
        monkeypatch.setattr(part, "scores", lambda *args, _scores=part.scores: scored.append(1) or _scores(*args))
    remembered = blend.top_contributors(train, customers, items)
    assert not scored  # no part scored again
    blend._recent_spreads = RecentSpreads()  # forgotten: the same reasons, from a second scoring
    np.testing.assert_array_equal(blend.top_contributors(train, customers, items), remembered)
    assert scored
    # A pair's buyer is told of the pair's first item behind its second.
    assert remembered[50 + 6 * 10 + 30, 0, 0] == 1 and items[50 + 6 * 10 + 30, 0] == 2
