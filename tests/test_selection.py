"""The automatic choice of model: stores with a known winner, a budget that is kept, the record."""

import json
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.selection import DONE, SKIPPED, STOPPED, Candidate, TrialRunner, choose, validation_split
from recommender.selection.validation import VALIDATION_FRACTION
from tests.test_cli import run


def _store(rows, columns, n_customers, n_items):
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, columns)), shape=(n_customers, n_items))


def pairs_store(seed=0, n_pairs=300, n_customers=1500, pairs_each=3):
    """Items come in 300 independent pairs; every customer buys both items of 3 random pairs.
    The held-out item is always the partner of a bought one: item-kNN finds it exactly,
    while 16 factors cannot hold 300 unrelated pairs apart."""
    rng = np.random.default_rng(seed)
    fit_rows, fit_items, held_rows, held_items = [], [], [], []
    for customer in range(n_customers):
        chosen = rng.choice(n_pairs, pairs_each, replace=False)
        for k, pair in enumerate(chosen):
            first, second = 2 * pair, 2 * pair + 1
            if k == 0 and customer % 2 == 0:  # half the customers are judged, on one partner
                fit_rows.append(customer), fit_items.append(first), held_rows.append(customer), held_items.append(second)
            else:
                fit_rows += [customer, customer]
                fit_items += [first, second]
    shape = (n_customers, 2 * n_pairs)
    return _store(fit_rows, fit_items, *shape), _store(held_rows, held_items, *shape)


def taste_store(seed=0, n_groups=4, group_items=300, n_customers=1500, bought=2):
    """Four taste groups of 300 items with steep popularity inside each group; a customer buys
    2 items of their group and is asked for a third. Co-purchases are too few for item-kNN to
    rank a group's items, while a 16-factor model learns the groups and their popular items."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, group_items + 1) ** 1.2
    popularity /= popularity.sum()
    fit_rows, fit_items, held_rows, held_items = [], [], [], []
    for customer in range(n_customers):
        group = customer % n_groups
        items = group * group_items + rng.choice(group_items, bought + 1, replace=False, p=popularity)
        fit_rows += [customer] * bought
        fit_items += items[:bought].tolist()
        held_rows.append(customer)
        held_items.append(int(items[bought]))
    shape = (n_customers, n_groups * group_items)
    return _store(fit_rows, fit_items, *shape), _store(held_rows, held_items, *shape)


POOL = [
    Candidate("item-knn-bm25", [{"neighbours": 50}]),
    Candidate("als", [{"factors": 16, "regularization": 1.0, "alpha": 10.0, "iterations": 10}]),
]


@pytest.mark.parametrize(("store", "winner"), [(pairs_store, "item-knn-bm25"), (taste_store, "als")])
def test_the_choice_picks_the_algorithm_known_to_win(store, winner):
    fit, targets = store()
    choice = choose(fit, targets, budget_seconds=120, pool=POOL, threads=1)
    assert [t.status for t in choice.trials] == [DONE, DONE]
    assert choice.algorithm == winner, choice.reason
    figures = {t.algorithm: t.metrics["ndcg@20"] for t in choice.trials}
    loser = next(name for name in figures if name != winner)
    assert figures[winner] > 1.2 * figures[loser], figures  # by a wide margin: the store is built so
    assert choice.reason.startswith(f"{winner} had the best validation ndcg@20")
    assert f"paired over {targets.getnnz(axis=1).astype(bool).sum()} customers" in choice.reason
    record = choice.record()
    assert record["winner"]["algorithm"] == winner and len(record["trials"]) == 2
    assert all(t["seconds"] > 0 and "ndcg@20" in t["metrics"] for t in record["trials"])


def test_a_trial_slower_than_the_budget_is_stopped_in_time():
    fit, targets = taste_store(n_customers=300)
    with TrialRunner(fit, targets) as runner:
        folder = runner._folder
        started = time.monotonic()
        # A million epochs of BPR: hours of work, stopped when the 3-second deadline passes.
        slow = runner.run("bpr", {"iterations": 1_000_000, "factors": 8}, deadline=time.monotonic() + 3.0)
        elapsed = time.monotonic() - started
        assert slow.status == STOPPED and "budget ran out" in slow.note
        assert 2.5 < elapsed < 10.0, elapsed  # generous margin for a loaded machine
        # The worker was killed; the next trial starts a fresh one and finishes.
        quick = runner.run("item-knn-bm25", {"neighbours": 20}, deadline=time.monotonic() + 60)
        assert quick.status == DONE and quick.metrics["ndcg@20"] > 0
    assert not folder.exists(), "the trial files are removed when the runner closes"


def test_two_lanes_asking_for_the_same_weighting_at_once_write_it_once(monkeypatch):
    """Two lanes' trials may move to the same new history weighting in one round. The second
    writer used to rewrite the matrix's files while the first lane's trial mapped them (an ALS
    trial on the online-retail log failed on the half-written file); now one writes, the other waits."""
    import threading

    from recommender.selection import trials as trials_module

    fit, targets = taste_store(n_customers=300)
    writes, real_save = [], trials_module.save_matrix

    def slow_save(folder, name, matrix):  # a large store's write, long enough for the other lane to arrive
        writes.append(name)
        time.sleep(0.3)
        real_save(folder, name, matrix)

    monkeypatch.setattr(trials_module, "save_matrix", slow_save)
    with TrialRunner(fit, targets, threads=2) as runner:
        start = threading.Barrier(2)

        def lane():
            start.wait()
            runner.add_fit("fit-1", fit * 2)

        lanes = [threading.Thread(target=lane) for _ in range(2)]
        for thread in lanes:
            thread.start()
        for thread in lanes:
            thread.join()
        assert writes.count("fit-1") == 1
        trial = runner.run("item-knn-bm25", {"neighbours": 20}, deadline=time.monotonic() + 60, fit="fit-1")
        assert trial.status == DONE


def test_the_winning_trials_start_state_reaches_the_choice_and_the_others_are_dropped():
    """Graph-filter's trials save their basis for the refit; the choice keeps the winner's (the
    basis a fit of the same settings computes) and deletes the files of beaten trials."""
    from recommender.algorithms import create_algorithm

    fit, targets = taste_store(n_customers=300)
    settings = [{"rank": 6, "sharpening": 0.0}, {"rank": 6, "sharpening": 0.0, "low_rank_weight": 0.1}]
    with TrialRunner(fit, targets) as runner:
        first, second = (runner.run("graph-filter", params, deadline=time.monotonic() + 60, keep_state=True) for params in settings)
        knn = runner.run("item-knn-bm25", {"neighbours": 20}, deadline=time.monotonic() + 60, keep_state=True)
        unkept = runner.run("graph-filter", settings[0], deadline=time.monotonic() + 60)  # as `tune` runs trials
        assert first.status == second.status == knn.status == unkept.status == DONE
        assert unkept.state_file == "" and sorted(path.name for path in runner._folder.glob("state-*")) == ["state-1.npz", "state-2.npz"]
        assert knn.state_file == "" and runner.load_state(knn) == {}  # item-kNN has no start state
        state = runner.load_state(first)
        expected = create_algorithm("graph-filter", settings[0]).fit(fit).singular_vectors_
        np.testing.assert_allclose(state["singular_vectors"], expected, atol=1e-4)
        saved = first.state_file
        runner.drop_state(first)
        assert not Path(saved).exists() and runner.load_state(first) == {}
    choice = choose(fit, targets, budget_seconds=120, pool=[Candidate("graph-filter", settings)], threads=1, stop_early=False)
    assert choice.algorithm == "graph-filter" and [t.status for t in choice.trials] == [DONE, DONE]
    assert choice.start_state["singular_vectors"].shape == (fit.shape[1], 6)
    assert all(t.state_file == "" for t in choice.trials)  # read into memory; the files went with the runner


def test_the_choice_keeps_its_budget_and_skips_what_cannot_fit():
    fit, targets = taste_store(n_customers=300)
    pool = [
        Candidate("item-knn-bm25", [{"neighbours": 20}]),
        # Estimated at far more than the budget: never started.
        Candidate("als", [{"factors": 512, "iterations": 100_000}]),
    ]
    started = time.monotonic()
    choice = choose(fit, targets, budget_seconds=8, pool=pool)
    assert time.monotonic() - started < 8 + 5
    statuses = {t.algorithm: t.status for t in choice.trials}
    assert statuses == {"item-knn-bm25": DONE, "als": SKIPPED}
    assert "of the budget left" in choice.trials[1].note and choice.algorithm == "item-knn-bm25"


def test_the_search_stops_early_and_searches_only_the_best_contenders(monkeypatch):
    from recommender.selection import choice as choice_module
    from recommender.selection.choice import PATIENCE

    CONTENDERS = 2  # of the three candidates below
    monkeypatch.setattr(choice_module, "CONTENDERS", CONTENDERS)
    monkeypatch.setattr(choice_module, "LATER_ROUNDS_SHARE", 100.0)  # only the patience rule ends it here
    fit, targets = pairs_store()
    # Three close candidates, each with alternatives that are its defaults again: no alternative
    # can gain, so each contender's search ends after PATIENCE trials, long before the budget.
    same = {"item-knn": {"neighbours": 50}, "item-knn-bm25": {"neighbours": 50}, "ease": {"l2": 10.0}}
    pool = [Candidate(name, [params] * 6) for name, params in same.items()]
    started = time.monotonic()
    choice = choose(fit, targets, budget_seconds=300, pool=pool)
    assert time.monotonic() - started < 120  # far from the 300 s budget
    tried = {name: [t for t in choice.trials if t.algorithm == name] for name in same}
    assert all(t.status == DONE for t in choice.trials)
    assert sorted(len(trials) for trials in tried.values()) == [1] + [1 + PATIENCE] * CONTENDERS
    # The one left out after round one is the worst of the three there.
    left_out = next(name for name, trials in tried.items() if len(trials) == 1)
    first = {name: trials[0].metrics["ndcg@20"] for name, trials in tried.items()}
    assert first[left_out] == min(first.values()), first
    assert choice.ending.startswith(f"stopped early: the last {PATIENCE} trials") and choice.record()["ending"] == choice.ending
    # Later rounds get at most LATER_ROUNDS_SHARE times round one's estimated seconds: none at all with 0.
    monkeypatch.setattr(choice_module, "LATER_ROUNDS_SHARE", 0.0)
    quick = choose(fit, targets, budget_seconds=300, pool=pool)
    assert quick.ending == "stopped early: later rounds' trials were estimated at 0 times round one's"
    # ...then the blend of the two best algorithms, which the budget still allows.
    assert len(quick.trials) == len(pool) + 1 and quick.trials[-1].algorithm == "blend" and quick.record()["blend"]["status"] == DONE
    # Without the early stop (a benchmark's tuned peer), every configuration is tried.
    every = choose(fit, targets, budget_seconds=300, pool=pool, stop_early=False)
    assert len(every.trials) == 6 * len(pool) and every.ending == "every alternative of the contenders was tried"


def test_the_default_budget_is_a_multiple_of_round_ones_estimate():
    from recommender.selection import DataShape
    from recommender.selection.choice import BUDGET_ROUNDS, MIN_BUDGET_SECONDS, _prior_estimate, default_budget, round_one_seconds

    shape = DataShape(customers=30_000, items=40_000, interactions=800_000, co_purchases=10**8, validation_customers=3000)
    knn, als = Candidate("item-knn-bm25", [{}]), Candidate("als", [{}, {"factors": 8}])
    # Round one: each candidate's defaults (not its alternatives), at the prior speeds.
    assert round_one_seconds(shape, [knn, als]) == _prior_estimate("item-knn-bm25", {}, shape) + _prior_estimate("als", {}, shape)
    # A candidate far dearer than all the others together does not size the budget.
    slow = Candidate("als", [{"iterations": 100_000}])
    assert round_one_seconds(shape, [knn, slow]) == round_one_seconds(shape, [knn])
    fit, targets = taste_store(n_customers=300)
    assert default_budget(fit, targets, pool=[knn]) == MIN_BUDGET_SECONDS  # a tiny store: the floor
    rng = np.random.default_rng(0)
    big = _store(rng.integers(30_000, size=800_000), rng.integers(40_000, size=800_000), 30_000, 40_000)
    held = _store(rng.integers(30_000, size=3000), rng.integers(40_000, size=3000), 30_000, 40_000)
    expected = BUDGET_ROUNDS * round_one_seconds(DataShape.of(big, int((np.diff(held.indptr) > 0).sum())), [knn, als])
    assert default_budget(big, held, pool=[knn, als]) == round(expected) > MIN_BUDGET_SECONDS


def test_validation_split_holds_out_each_sampled_customers_latest_new_purchases():
    from recommender.purchases import PurchaseLog
    from recommender.vocabulary import IdVocabulary

    # Customer 0 buys a, b, c, d, e at times 1..5 and rebuys a at time 6; customer 1 buys once.
    customers, items = IdVocabulary(np.array(["0", "1"])), IdVocabulary(np.array(list("abcdef")))
    log = PurchaseLog(
        customers, items,
        np.array([0, 0, 0, 0, 0, 0, 1], np.int32), np.array([0, 1, 2, 3, 4, 0, 5], np.int32),
        np.ones(7, np.float32), np.array([1, 2, 3, 4, 5, 6, 1], np.int64),
    )
    split = validation_split(log)
    assert split.kind == "time" and VALIDATION_FRACTION == 0.2
    # The last fifth of customer 0's six events (round(1.2) = 1: the rebuy of a at time 6) is
    # held out, but a was bought before: nothing new to ask for. So nothing is judged...
    assert split.targets.nnz == 0
    # The held-out pair was buying again: the store's owner sees its share (1 of 1 pairs).
    assert split.describe()["repeat_purchases"]["repeat_share"] == 1.0 and split.repeats["test_customers"] == 1
    log.timestamp = np.array([1, 2, 3, 4, 6, 6, 1], np.int64)  # ...unless e is bought in the last basket too
    split = validation_split(log)
    assert split.targets[0].indices.tolist() == [4] and split.fit[0].indices.tolist() == [0, 1, 2, 3]
    assert split.fit[1].indices.tolist() == [5]  # one purchase: kept for fitting
    assert (split.repeats["repeat_pairs"], split.repeats["test_pairs"]) == (1, 2)  # a again, e new
    log.timestamp = None
    assert "repeat_purchases" not in validation_split(log).describe()  # a random split holds out no next period


def test_train_chooses_by_default_and_records_why(tmp_path):
    run("demo-data", "--out", tmp_path / "data", "--customers", 300, "--items", 80, "--purchases", 6000, "--seed", 5)
    result = run("train", "--data", tmp_path / "data/purchases.csv", "--models-dir", tmp_path / "models", "--budget", 10, "--top-lists", 10)
    assert "choosing a model: budget 10 s (given)" in result.stderr
    folder = tmp_path / "models" / result.stdout.strip().splitlines()[-1].split("/")[-1]
    manifest = json.loads((folder / "manifest.json").read_text())
    choice = manifest["choice"]
    assert manifest["algorithm"] == choice["winner"]["algorithm"]
    assert {t["algorithm"] for t in choice["trials"]} >= {"item-knn-bm25"}
    assert f"chose {manifest['algorithm']}: {choice['reason']}" in result.stderr
    assert choice["seconds"] <= 10 + 5 and choice["validation"]["kind"] == "time"
    # A graph-filter winner's published fit starts from its trial's basis (no other algorithm has a start state).
    assert choice["refit_started_from_trial"] == (manifest["algorithm"] == "graph-filter")
    page = (folder / "choice.html").read_text()
    assert choice["reason"].split(":")[0] in page and "<img" in page
    from recommender.selection.trials import weightings_differ

    header = next(line for line in result.stderr.splitlines() if line.startswith("algorithm "))
    assert ("history" in header.split()) == ("<th>history</th>" in page) == weightings_differ(choice["trials"])
    started = choice["refit_started_from_trial"]
    assert ("starting from its trial's fitted state" in page) == started and ("fitted on all the data, from scratch" in page) == (not started)
    usage = run("train", "--data", tmp_path / "data/purchases.csv", "--param", "factors=8", check=False)
    assert usage.returncode == 2 and "--algorithm auto searches them" in usage.stderr


def test_ease_is_a_candidate_only_where_its_item_matrix_fits_the_memory_limit():
    from recommender.selection import DataShape, candidates

    shape = DataShape(customers=50_000, items=30_000, interactions=10**6, co_purchases=10**8, validation_customers=3000)
    assert "ease" not in [c.algorithm for c in candidates(shape)]  # 30,000² x 4 bytes = 3.6 GB > 2 GB
    roomy = {c.algorithm: c for c in candidates(shape, memory_limit_gb=4.0)}
    # Its penalty is set from the data: multiples of the mean item degree (here 33.3).
    assert [p["l2"] for p in roomy["ease"].configurations] == [33.333, 133.333, 8.333, 533.333, 2133.333]
    assert all(p["memory_limit_gb"] == 4.0 for p in roomy["ease"].configurations)


def drifting_store(seed=0, n_customers=600, clusters=10, group_items=8):
    """Tastes that change: each customer bought 4 items of an early taste group in January and,
    in June, 4 of a late group chosen independently (two of them in the last week). The
    validation asks for the last purchases, which are late-group items: only a history weighted
    by recency ranks the late group above the four early purchases' neighbours."""
    from recommender.purchases import PurchaseLog
    from recommender.vocabulary import IdVocabulary

    rng = np.random.default_rng(seed)
    day = 86_400
    customers, items, times = [], [], []
    for customer in range(n_customers):
        early, late = rng.integers(clusters, size=2)
        for k, item in enumerate(rng.choice(group_items, 4, replace=False)):
            customers.append(customer), items.append(early * group_items + item), times.append(k * day)
        for k, item in enumerate(rng.choice(group_items, 5, replace=False)):
            customers.append(customer), items.append((clusters + late) * group_items + item), times.append((150 + 7 * k) * day)
    n_items = 2 * clusters * group_items
    return PurchaseLog(
        IdVocabulary(np.array([f"c{k:04d}" for k in range(n_customers)])), IdVocabulary(np.array([f"i{k:03d}" for k in range(n_items)])),
        np.array(customers, np.int32), np.array(items, np.int32), np.ones(len(items), np.float32), np.array(times, np.int64),
    )


def test_the_choice_chooses_the_history_weighting_too():
    from recommender.selection import choose_for_log
    from recommender.selection.choice import weightings_to_compare
    from recommender.weights import HistoryWeighting

    log = drifting_store()
    compared = weightings_to_compare(log, validation_split(log).fit)
    # No repeats in this store (every cell 1): only recency is compared, "none" first.
    assert compared == [HistoryWeighting(), HistoryWeighting(30.0), HistoryWeighting(90.0)]
    pool = [Candidate("item-knn-bm25", [{"neighbours": 20}])]
    choice = choose_for_log(log, budget_seconds=120, metric="ndcg@5", pool=pool)
    figures = {t.weighting["half_life_days"]: t.metrics["ndcg@5"] for t in choice.trials}
    assert set(figures) == {None, 30.0, 90.0}
    assert choice.weighting.half_life_days == 30.0 and figures[30.0] > 1.5 * figures[None], figures
    assert choice.record()["winner"]["history_weighting"] == {"half_life_days": 30.0, "repeats": "count"}
    # A weighting that is given is used by every trial, and not searched.
    given = choose_for_log(log, budget_seconds=60, metric="ndcg@5", pool=pool, weighting=HistoryWeighting(None, "once"))
    assert [t.weighting for t in given.trials] == [{"half_life_days": None, "repeats": "once"}]


def test_the_winner_is_refitted_with_the_settings_its_trial_chose():
    from recommender.selection import TrialOutcome
    from recommender.selection.choice import refit_params

    # graph-filter chooses its rank and sharpening on held-out data while fitting; the refit
    # keeps them (both are settings of its configuration) instead of choosing them again.
    trial = TrialOutcome("graph-filter", {"co_buyer_exponent": 1.0}, DONE, fitted_settings={"rank": 12, "sharpening": 0.35})
    assert refit_params(trial) == {"co_buyer_exponent": 1.0, "rank": 12, "sharpening": 0.35}
    # A fitted setting that is not a setting of the configuration is not passed on.
    assert refit_params(TrialOutcome("als", {"factors": 8}, DONE, fitted_settings={"epochs_run": 3})) == {"factors": 8}
    fit, targets = pairs_store()  # customers with 5-6 purchases: graph-filter holds some out to choose
    choice = choose(fit, targets, budget_seconds=120, pool=[Candidate("graph-filter", [{"rank_share": 0.05}])])
    chosen = choice.trials[0].fitted_settings
    assert choice.params == {"rank_share": 0.05, **chosen} and set(chosen) == {"rank", "sharpening"}
    assert choice.record()["winner"]["params"] == {"rank_share": 0.05}  # as tried
    assert choice.record()["winner"]["refit_params"] == choice.params
    # Refitted with them on the same data, the model has the trial's settings without choosing.
    from recommender.algorithms import create_algorithm

    assert create_algorithm("graph-filter", choice.params).fit(fit).fitted_settings() == chosen
    from recommender.evaluation.report import choice_section

    assert f"keeping what its trial chose while fitting (rank={chosen['rank']}, sharpening={chosen['sharpening']})" in choice_section(choice.record())


def test_graph_filter_trials_share_their_basis_in_the_choices_worker(monkeypatch):
    from recommender.algorithms import create_algorithm, graph_filter

    fit, _ = taste_store(n_customers=400)
    computed = []
    original = graph_filter.item_basis
    monkeypatch.setattr(graph_filter, "item_basis", lambda *a: computed.append(a[1:]) or original(*a))
    alone = create_algorithm("graph-filter", {"rank": 20, "sharpening": 0.35}).fit(fit)
    assert len(computed) == 1  # a process that did not ask keeps nothing...
    create_algorithm("graph-filter", {"rank": 20, "sharpening": 0.35}).fit(fit)
    assert len(computed) == 2 and graph_filter._last_bases is None
    monkeypatch.setattr(graph_filter, "_last_bases", None)
    graph_filter.remember_last_basis()  # ...the worker asks
    first = create_algorithm("graph-filter", {"rank": 20, "sharpening": 0.35}).fit(fit)
    other = create_algorithm("graph-filter", {"rank": 20, "sharpening": 0.35, "co_buyer_exponent": 1.0}).fit(fit)
    assert len(computed) == 3  # the second fit's basis (same matrix, rank and seed) was remembered
    np.testing.assert_array_equal(first.singular_vectors_, alone.singular_vectors_)
    np.testing.assert_array_equal(other.singular_vectors_, alone.singular_vectors_)
    create_algorithm("graph-filter", {"rank": 10, "sharpening": 0.35}).fit(fit)  # another rank: a new basis
    create_algorithm("graph-filter", {"rank": 20, "sharpening": 0.35}).fit(fit[:300])  # other data: a new basis
    assert [c[0] for c in computed] == [20, 20, 20, 10, 20]
    # The last two are kept (a trial's held-out basis and its final one): rank 20 on fit is gone.
    create_algorithm("graph-filter", {"rank": 10, "sharpening": 0.35}).fit(fit)
    create_algorithm("graph-filter", {"rank": 20, "sharpening": 0.35}).fit(fit)
    assert [c[0] for c in computed] == [20, 20, 20, 10, 20, 20]


def test_the_choice_keeps_the_blend_of_its_two_best_when_it_wins():
    from recommender.algorithms import create_algorithm
    from recommender.evaluation import evaluate
    from recommender.selection.choice import BLEND_WEIGHTS
    from tests.test_blend import two_signal_store

    # Item-kNN finds the 11 pairs' customers' answers, popularity the other 10's, a blend at
    # weight 0.3 (popularity's share) everyone's first (tests/test_blend.py); judged at 2.
    fit, targets = two_signal_store(pair_customers=11)
    pool = [Candidate("popular", [{}]), Candidate("item-knn", [{}])]
    choice = choose(fit, targets, budget_seconds=120, pool=pool, metric="ndcg@2")
    alone = {t.algorithm: t.metrics["ndcg@2"] for t in choice.trials}
    assert alone["item-knn"] == pytest.approx(11 / 21) and alone["popular"] == pytest.approx(10 / 21)
    assert choice.algorithm == "blend" and choice.params == {"first": "item-knn", "first_params": {}, "second": "popular",
                                                             "second_params": {}, "weight": 0.3}
    assert 0.3 in BLEND_WEIGHTS and alone["blend"] == pytest.approx(1.0)
    record = choice.record()
    assert record["blend"]["kept"] and record["blend"]["weight"] == 0.3 and record["winner"]["algorithm"] == "blend"
    assert "0.3: 1.0000" in record["blend"]["note"]  # every weight's figure is in the record
    # Refitted with the recorded settings, the blend gives the validation figure again.
    refit = create_algorithm(choice.algorithm, choice.params).fit(fit)
    assert evaluate(refit, fit, targets, (2,))["ndcg@2"] == pytest.approx(1.0)


class KnownTrials:
    """A stand-in for the trial runner whose trials give known figures, so the search's rules
    are what is tested: ``FIGURES[(algorithm, first setting's value)]`` is the trial's NDCG@20,
    ``PER_CUSTOMER`` (same key) its per-customer figures (default: the figure for each of 100 customers)."""

    FIGURES: dict = {}
    PER_CUSTOMER: dict = {}
    BLEND_WEIGHT = 0.3  # the weight a blend's trial says it chose
    SECONDS = 0.01  # what every trial says it took


    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def load_state(self, trial):
        return {}  # stand-in trials fit nothing, so they have no start state

    def abort(self):
        pass

    def lend(self, lane):
        pass  # stand-in trials end at once: nothing to lend threads to

    def drop_state(self, trial):
        pass

    def run(self, algorithm, params, **kwargs):
        from recommender.selection import TrialOutcome

        key = (algorithm, next(iter(params.values())))
        if key in self.PER_CUSTOMER:
            per_customer = self.PER_CUSTOMER[key]
        else:  # the figure on average, with the spread of real customers (seeded by the trial)
            spread = np.random.default_rng(zlib.crc32(repr(key).encode())).normal(0.0, 0.05, 100)
            per_customer = self.FIGURES[key] + spread - spread.mean()
        return TrialOutcome(algorithm, dict(params), DONE, metrics={"ndcg@20": float(np.mean(per_customer))},
                            per_customer=np.asarray(per_customer, dtype=np.float64), seconds=self.SECONDS,
                            fitted_settings={"weight": self.BLEND_WEIGHT} if kwargs.get("weights") else {})


@pytest.fixture
def known_trials(monkeypatch):
    """The choice module with :class:`KnownTrials` as its runner, and the later rounds' allowance
    (a multiple of round one's estimated seconds) lifted, so that the other rules of the search
    are seen whole; the allowance has its own test."""
    from recommender.selection import choice as choice_module

    monkeypatch.setattr(choice_module, "TrialRunner", KnownTrials)
    monkeypatch.setattr(choice_module, "LATER_ROUNDS_SHARE", 1e6)
    return choice_module


def test_later_rounds_search_only_candidates_close_enough_to_the_best(monkeypatch, known_trials):
    choice_module = known_trials
    # Round one puts item-knn-bm25 at 0.20, ease at 0.165 (0.825 of it) and als at 0.155 (0.775);
    # the blend of the two best (item-knn-bm25 first) reaches 0.25.
    monkeypatch.setattr(KnownTrials, "FIGURES", {("item-knn-bm25", 50): 0.20, ("item-knn-bm25", 20): 0.21, ("ease", 1.0): 0.165,
                                                 ("ease", 2.0): 0.17, ("als", 1.0): 0.155, ("als", 2.0): 0.30,
                                                 ("blend", "item-knn-bm25"): 0.25})
    assert choice_module.CLOSE_ENOUGH == 0.8
    pool = [Candidate("item-knn-bm25", [{"neighbours": 50}, {"neighbours": 20}]), Candidate("ease", [{"l2": 1.0}, {"l2": 2.0}]),
            Candidate("als", [{"regularization": 1.0}, {"regularization": 2.0}])]
    fit, targets = taste_store(n_customers=50)
    choice = choose(fit, targets, budget_seconds=60, pool=pool)
    tried = [(t.algorithm, next(iter(t.params.values()))) for t in choice.trials]
    # als, below 0.8 of the best, gets no alternative (here one that would have won: the rule's price).
    assert sorted(tried[:3]) == [("als", 1.0), ("ease", 1.0), ("item-knn-bm25", 50)]  # round one, cheapest first
    assert tried[3:] == [("item-knn-bm25", 20), ("ease", 2.0), ("blend", "item-knn-bm25")]
    # The blend's parts are each algorithm's best trial; it won, so it is refitted with its weight.
    assert choice.algorithm == "blend" and choice.params == {
        "first": "item-knn-bm25", "first_params": {"neighbours": 20}, "second": "ease", "second_params": {"l2": 2.0}, "weight": 0.3}
    blend = choice.record()["blend"]
    assert {k: blend[k] for k in ("parts", "status", "kept", "weight", "ndcg@20", "first_alone")} == {
        "parts": ["item-knn-bm25", "ease"], "status": DONE, "kept": True, "weight": 0.3, "ndcg@20": 0.25, "first_alone": 0.21}
    assert blend["lead"] == pytest.approx(0.04) and blend["lead"] > 3 * blend["standard_error"]
    assert choice.reason.startswith("the blend of item-knn-bm25 and ease (weight 0.3 on the second) had the best validation ndcg@20, 0.2500")


def test_a_blend_ahead_by_less_than_three_standard_errors_is_not_kept(monkeypatch, known_trials):
    # Over 100 customers the blend beats item-knn-bm25 by 0.2 on every fifth customer and
    # loses 0.1 on another fifth: a lead of +0.02, standard error 0.0099 (2.0): within the noise.
    single = np.full(100, 0.5)
    lead = np.tile([0.2, -0.1, 0.0, 0.0, 0.0], 20)
    monkeypatch.setattr(KnownTrials, "FIGURES", {("als", 1.0): 0.48})  # 4 standard errors behind: not settled
    monkeypatch.setattr(KnownTrials, "PER_CUSTOMER", {("item-knn-bm25", 50): single, ("blend", "item-knn-bm25"): single + lead})
    assert known_trials.BLEND_STANDARD_ERRORS == 3.0
    pool = [Candidate("item-knn-bm25", [{"neighbours": 50}]), Candidate("als", [{"regularization": 1.0}])]
    fit, targets = taste_store(n_customers=50)
    choice = choose(fit, targets, budget_seconds=60, pool=pool)
    assert choice.algorithm == "item-knn-bm25" and choice.params == {"neighbours": 50}
    blend = choice.record()["blend"]
    assert blend["kept"] is False and blend["lead"] == pytest.approx(0.02) and blend["standard_error"] == pytest.approx(0.00985, abs=1e-5)
    assert choice.reason.startswith("item-knn-bm25 had the best validation ndcg@20, 0.5000: 1.042x the next algorithm, als")
    assert choice.reason.endswith("the blend of item-knn-bm25 and als scored 0.5200 (+0.0200 ± 0.0098 s.e.), "
                                  "not more than 3 standard errors ahead: not kept")


@pytest.mark.parametrize(("shortfall", "settled"), [(0.0, False), (0.01, True)])
def test_the_search_ends_after_round_one_when_the_algorithm_is_settled(monkeypatch, known_trials, shortfall, settled):
    choice_module = known_trials

    # Over 100 customers als trails item-knn-bm25 by 0.0 and 0.2 in turn (+ shortfall): a mean
    # of 0.10 (0.11) with a paired standard error of 0.01005, so 9.95 (10.9) standard errors.
    leader = np.tile([0.5, 0.5], 50)
    monkeypatch.setattr(KnownTrials, "FIGURES", {("item-knn-bm25", 20): 0.6, ("als", 2.0): 0.2, ("blend", "item-knn-bm25"): 0.55})
    monkeypatch.setattr(KnownTrials, "PER_CUSTOMER", {("item-knn-bm25", 50): leader,
                                                      ("als", 1.0): leader - shortfall - np.tile([0.0, 0.2], 50)})
    assert choice_module.SETTLED_STANDARD_ERRORS == 10.0
    pool = [Candidate("item-knn-bm25", [{"neighbours": 50}, {"neighbours": 20}]), Candidate("als", [{"regularization": 1.0}, {"regularization": 2.0}])]
    fit, targets = taste_store(n_customers=50)
    choice = choose(fit, targets, budget_seconds=60, pool=pool)
    if settled:
        assert len(choice.trials) == 2 and choice.params == {"neighbours": 50} and "blend" not in choice.record()
        assert choice.ending == "stopped after round one: item-knn-bm25 led the next algorithm, als, by 10.9 standard errors (more than 10)"
    else:  # within 10 standard errors: later rounds as before (als, below 0.8 of the best, has none), then the blend
        assert len(choice.trials) == 4 and choice.algorithm == "item-knn-bm25" and choice.params == {"neighbours": 20}
        assert choice.record()["blend"]["kept"] is False and choice.record()["blend"]["ndcg@20"] == 0.55
    assert choice.record()["ending"] == choice.ending
    # A benchmark's exhaustive search (no early stop) is never cut short by it.
    assert len(choose(fit, targets, budget_seconds=60, pool=pool, stop_early=False).trials) == 3


def test_the_choice_page_tells_trials_apart_by_history_weighting():
    from recommender.evaluation.report import choice_section

    trial = {"algorithm": "ease", "params": {"l2": 25.0}, "status": "done", "metrics": {"ndcg@20": 0.2}, "seconds": 1.0}
    weighting = {"half_life_days": 30.0, "repeats": "once"}
    record = {
        "winner": {"algorithm": "ease", "params": {"l2": 25.0}, "history_weighting": weighting}, "metric": "ndcg@20",
        "reason": "ease won", "budget_seconds": 60, "seconds": 5, "validation": {},
        "trials": [trial, {**trial, "metrics": {"ndcg@20": 0.21}, "history_weighting": weighting}],
    }
    page = choice_section(record)
    assert "<th>history</th>" in page
    assert page.count("no recency decay, repeats count") == 1 and page.count("half-life 30 days, repeats once") == 1
    # Only the winner's row is bold: the same algorithm and settings under the other weighting is not.
    bold = [row for row in page.split("<tr") if row.startswith(' style="font-weight:bold"')]
    assert len(bold) == 1 and "half-life 30 days" in bold[0]
    assert "from scratch" not in page  # an evaluation's record, from before the refit: nothing said
    plain = choice_section({**record, "trials": [trial], "refit_started_from_trial": False})
    assert "<th>history</th>" not in plain and "fitted on all the data, from scratch." in plain


def test_two_lanes_run_trials_at_once_in_their_own_processes_with_their_own_threads():
    """The same trials give the same figures on two lanes at once as one after another; a
    lane's process runs a trial on one thread, then one on two, without starting again."""
    from concurrent.futures import ThreadPoolExecutor

    fit, targets = taste_store(n_customers=300)
    settings = [{"neighbours": 20}, {"neighbours": 5}]
    with TrialRunner(fit, targets, threads=2) as runner:
        alone = [runner.run("item-knn-bm25", params, deadline=time.monotonic() + 60) for params in settings]
        first = runner._workers[0]._process.pid
        with ThreadPoolExecutor(2) as pool:
            beside = list(pool.map(lambda lane: runner.run("item-knn-bm25", settings[lane], deadline=time.monotonic() + 60,
                                                           lane=lane, threads=1, keep_state=True), [0, 1]))
        again = runner.run("als", {"factors": 4, "iterations": 2}, deadline=time.monotonic() + 60)
        workers = runner._workers
        assert sorted(workers) == [0, 1] and workers[0]._process.pid == first != workers[1]._process.pid
    assert [t.status for t in beside] == [DONE, DONE] and again.status == DONE
    assert [t.metrics for t in beside] == [t.metrics for t in alone]
    # Each trial's own count, in the BLAS and in implicit's OpenMP runtime alike.
    assert [t.threads for t in alone] == [{"blas": 2, "openmp": 2}] * 2 and again.threads == {"blas": 2, "openmp": 2}
    assert [t.threads for t in beside] == [{"blas": 1, "openmp": 1}] * 2


def test_a_lanes_trial_process_serves_it_again_in_a_later_round():
    """Real trial processes: a later round's steps run on the lanes that round one started.
    (A trial process dies with the thread that started it, so the lanes' threads must outlive
    round one: before they did, both of the round's trials failed at once.)"""
    pool = [Candidate("item-knn-bm25", [{"neighbours": 20}, {"neighbours": 10}]), Candidate("item-knn", [{"neighbours": 20}, {"neighbours": 10}])]
    fit, targets = taste_store(n_customers=300)
    side_by_side = choose(fit, targets, budget_seconds=120, pool=pool, threads=2, stop_early=False)
    one_by_one = choose(fit, targets, budget_seconds=120, pool=pool, threads=1, stop_early=False)
    assert [(t.algorithm, t.params, t.status) for t in side_by_side.trials] == [(t.algorithm, t.params, DONE) for t in one_by_one.trials]
    assert len(side_by_side.trials) == 4 and [t.metrics for t in side_by_side.trials] == [t.metrics for t in one_by_one.trials]


def test_round_one_runs_two_trials_at_once_given_two_threads_and_records_them_in_order(monkeypatch, known_trials):
    import threading

    monkeypatch.setattr(KnownTrials, "FIGURES", {("item-knn-bm25", 50): 0.20, ("ease", 1.0): 0.165, ("als", 1.0): 0.155,
                                                 ("blend", "item-knn-bm25"): 0.19})
    pool = [Candidate("item-knn-bm25", [{"neighbours": 50}]), Candidate("ease", [{"l2": 1.0}]), Candidate("als", [{"regularization": 1.0}])]
    fit, targets = taste_store(n_customers=50)
    run, started = KnownTrials.run, []

    def recording(self, algorithm, params, **kwargs):
        started.append(algorithm)
        return run(self, algorithm, params, **kwargs)

    monkeypatch.setattr(KnownTrials, "run", recording)
    one_by_one = choose(fit, targets, budget_seconds=60, pool=pool, threads=1)
    assert started[:3] == [t.algorithm for t in one_by_one.trials[:3]]  # one after another: run cheapest first
    met, calls = threading.Barrier(2, timeout=20), []

    def meeting(self, algorithm, params, **kwargs):
        calls.append((algorithm, kwargs.get("lane"), kwargs.get("threads")))
        if len(calls) <= 2:
            met.wait()  # the first two trials wait for each other: they run at the same time
        return run(self, algorithm, params, **kwargs)

    monkeypatch.setattr(KnownTrials, "run", meeting)
    in_lanes = choose(fit, targets, budget_seconds=60, pool=pool, threads=2)
    round_one = calls[:3]  # then the blend's trial, on every thread (lane 0, the runner's count)
    assert not met.broken and {lane for _, lane, _ in round_one} == {0, 1} and {threads for *_, threads in round_one} == {1}
    assert calls[3:] == [("blend", 0, None)]
    order = [(t.algorithm, t.params) for t in one_by_one.trials]
    assert calls[0][0] == order[2][0]  # the costliest of round one first
    assert [(t.algorithm, t.params) for t in in_lanes.trials] == order  # recorded cheapest first, as one after another
    assert in_lanes.algorithm == one_by_one.algorithm == "item-knn-bm25"
    from recommender.evaluation.report import choice_section

    assert (in_lanes.record()["lanes"], one_by_one.record()["lanes"]) == (2, 1)
    assert "ran 2 at a time, each on 1 thread; the others on 2." in choice_section(in_lanes.record())
    assert "took all" not in choice_section(in_lanes.record())  # stand-in trials end at once: none was lent threads
    lent = in_lanes.record()
    lent["trials"][0]["lent_threads"] = 2
    assert "the others on 2. 1 of them took all 2 threads once the trial beside it had ended." in choice_section(lent)
    assert "at a time" not in choice_section(one_by_one.record())


def test_a_later_rounds_steps_of_different_contenders_run_side_by_side(monkeypatch, known_trials):
    """Each contender's next step starts from its own best, so given two threads one round's
    steps run at the same time; the search and its record are those of one after another."""
    import threading

    monkeypatch.setattr(KnownTrials, "FIGURES", {("item-knn-bm25", 50): 0.20, ("item-knn-bm25", 100): 0.21,
                                                 ("als", 1.0): 0.19, ("als", 2.0): 0.198, ("blend", "item-knn-bm25"): 0.2})
    pool = [Candidate("item-knn-bm25", [{"neighbours": 50}, {"neighbours": 100}]), Candidate("als", [{"regularization": 1.0}, {"regularization": 2.0}])]
    fit, targets = taste_store(n_customers=50)
    one_by_one = choose(fit, targets, budget_seconds=60, pool=pool, threads=1)
    met, calls = threading.Barrier(2, timeout=20), []
    run = KnownTrials.run

    def meeting(self, algorithm, params, **kwargs):
        calls.append((algorithm, next(iter(params.values())), kwargs.get("lane"), kwargs.get("threads")))
        if len(calls) in (3, 4):
            met.wait()  # the later round's two steps wait for each other: they run at the same time
        return run(self, algorithm, params, **kwargs)

    monkeypatch.setattr(KnownTrials, "run", meeting)
    side_by_side = choose(fit, targets, budget_seconds=60, pool=pool, threads=2)
    assert not met.broken and {call[2:] for call in calls[2:4]} == {(0, 1), (1, 1)}
    assert {call[:2] for call in calls[2:4]} == {("item-knn-bm25", 100), ("als", 2.0)}
    assert calls[4:] == [("blend", "item-knn-bm25", 0, None)]  # the blend alone, on every thread
    assert [(t.algorithm, t.params) for t in side_by_side.trials] == [(t.algorithm, t.params) for t in one_by_one.trials]
    assert [t.algorithm for t in side_by_side.trials[2:4]] == ["item-knn-bm25", "als"]  # the best contender's step first
    assert side_by_side.algorithm == one_by_one.algorithm == "item-knn-bm25" and side_by_side.params == {"neighbours": 100}


@pytest.mark.parametrize("seconds", ["steady", "doubling"])
def test_later_rounds_end_when_their_trials_are_estimated_at_one_and_a_half_times_round_ones(monkeypatch, known_trials, seconds):
    """The later rounds' allowance counts trials' estimated seconds (at the prior speeds), so the
    search is the same whatever the trials measured: here every trial is estimated at 2 s, and
    says it took 2 s, or twice as long as the one before (a machine getting busier)."""
    import dataclasses

    monkeypatch.setattr(known_trials, "LATER_ROUNDS_SHARE", 1.5)
    monkeypatch.setattr(known_trials, "PATIENCE", 100)
    monkeypatch.setattr(known_trials, "_prior_estimate", lambda algorithm, params, shape: 2.0)
    monkeypatch.setattr(KnownTrials, "FIGURES", {("item-knn-bm25", n): 0.2 + n / 1e4 for n in range(10, 200, 10)}
                        | {("als", 1): 0.2, ("blend", "item-knn-bm25"): 0.2})
    run, measured = KnownTrials.run, []

    def timed(self, algorithm, params, **kwargs):
        measured.append(2.0 * (2 ** len(measured) if seconds == "doubling" else 1))
        return dataclasses.replace(run(self, algorithm, params, **kwargs), seconds=measured[-1])

    monkeypatch.setattr(KnownTrials, "run", timed)
    pool = [Candidate("item-knn-bm25", [{"neighbours": n} for n in range(10, 200, 10)]), Candidate("als", [{"regularization": 1}])]
    fit, targets = taste_store(n_customers=50)
    chosen = choose(fit, targets, budget_seconds=600, pool=pool, threads=1)
    # Round one: 2 trials, 4 s estimated; later rounds start trials while theirs are estimated under 6 s: three.
    assert [t.algorithm for t in chosen.trials] == ["item-knn-bm25", "als", "item-knn-bm25", "item-knn-bm25", "item-knn-bm25", "blend"]
    assert chosen.ending == "stopped early: later rounds' trials were estimated at 1.5 times round one's"


def test_an_interrupted_choice_stops_the_trials_running_in_its_lanes():
    """Ctrl-C (here: an exception from the progress tick) during round one in lanes ends the
    choice at once, killing both lanes' trials, instead of waiting for them to finish."""
    import subprocess

    class Interrupted(Exception):
        pass

    started = time.monotonic()

    def tick():
        if time.monotonic() - started > 3.0:
            raise Interrupted

    fit, targets = taste_store(n_customers=300)

    def workers() -> set[str]:
        return set(subprocess.run(["pgrep", "-f", "recommender.selection.worker"], capture_output=True, text=True).stdout.split())

    before = workers()
    # A million epochs of BPR and of ALS: hours of work, in two lanes at once.
    pool = [Candidate("bpr", [{"iterations": 1_000_000, "factors": 8}]), Candidate("als", [{"iterations": 1_000_000, "factors": 8}])]
    with pytest.raises(Interrupted):
        choose(fit, targets, budget_seconds=120, pool=pool, threads=2, waiting=tick)  # a hang would end with the budget
    assert time.monotonic() - started < 20.0  # generous margin for a loaded machine
    assert not workers() - before, "no trial process outlives the choice"


def test_a_trial_process_whose_pipe_closed_before_the_wait_counts_as_stopped():
    """Stopped from another thread between starting and watching its pipe: a failed trial
    (BrokenPipeError, which the runner reports), not a ValueError out of the choice."""
    from recommender.selection.trials import _Worker

    fit, targets = taste_store(n_customers=50)
    with TrialRunner(fit, targets) as runner:
        worker = _Worker(runner._folder, 1)
        assert worker.start(time.monotonic() + 60, None)
        worker._process.stdout.close()  # what stop() in another thread does first
        with pytest.raises(BrokenPipeError, match="stopped"):
            worker._answer(time.monotonic() + 60, None)
        worker.stop()


def test_a_trial_is_lent_the_threads_of_a_lane_that_has_finished():
    """A real trial process, started on one of two threads, takes both when the runner lends
    them (the lane beside it has nothing more to run), and gives the same figures as unlent
    up to the summation order;
    a lend to a process between trials does nothing (it ignores the signal there)."""
    from concurrent.futures import ThreadPoolExecutor

    fit, targets = taste_store(n_customers=300)
    slow = {"factors": 32, "iterations": 400}  # 0.25 s on one thread on a fast VM, seconds on others
    with TrialRunner(fit, targets, threads=2) as runner:
        unlent = runner.run("als", slow, deadline=time.monotonic() + 120, lane=1, threads=1)
        pid = runner._workers[1]._process.pid
        runner.lend(1)  # between trials: ignored
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(runner.run, "als", slow, deadline=time.monotonic() + 120, lane=1, threads=1)
            time.sleep(unlent.seconds / 3)  # inside the fit: a floor of 0.5 s came after its end on a fast VM
            runner.lend(1)
            lent = running.result()
        assert runner._workers[1]._process.pid == pid
    assert unlent.status == lent.status == DONE
    assert unlent.lent_threads == 0 and "lent_threads" not in unlent.record()
    assert lent.threads == {"blas": 1, "openmp": 1} and lent.lent_threads == 2 and lent.record()["lent_threads"] == 2
    # Two BLAS threads sum ALS's Gram matrices in another order, and 400 iterations carry that
    # on: on a 2-core EPYC one of the 300 customers' hits moved (recall 0.5300 against 0.5267).
    assert lent.metrics == pytest.approx(unlent.metrics, rel=0.02)


def test_a_lane_with_nothing_left_lends_its_threads_to_the_lanes_still_running():
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from recommender.selection.choice import _in_lanes

    released, lent, done = threading.Event(), [], []

    def run(item, lane, lane_threads):
        if item == "slow":
            assert released.wait(10)  # until the other lane has lent its threads
        done.append((item, lane))

    def lend(lane):
        lent.append(lane)
        released.set()

    with ThreadPoolExecutor(2) as executor:
        _in_lanes(["slow", "quick", "quicker"], run, 2, 1, None, lambda: None, executor, lend)
    assert lent == [0] and done[-1] == ("slow", 0) and sorted(done) == [("quick", 1), ("quicker", 1), ("slow", 0)]


def test_the_search_says_the_budget_ended_it_when_a_later_trial_did_not_fit():
    """A trial skipped for the budget left, then the allowance refusing the next round: the
    ending used to name the allowance, while every skipped trial said '0 s of the budget left'."""
    from recommender.selection.choice import _search
    from recommender.selection.trials import TrialOutcome

    best = {"als": TrialOutcome("als", {}, DONE, metrics={"ndcg@20": 0.1}), "ease": TrialOutcome("ease", {}, DONE, metrics={"ndcg@20": 0.09})}
    pending = {"als": [{"factors": 64}, {"factors": 32}], "ease": [{"l2": 4.0}]}
    admitted = iter([True, True, False, False])  # the allowance takes round two, then no more

    def attempt(algorithm, params, weighting=0, **_):
        return TrialOutcome(algorithm, params, SKIPPED if algorithm == "ease" else DONE, metrics={"ndcg@20": 0.1} if algorithm == "als" else {})

    ending = _search(
        [Candidate("als", [{}]), Candidate("ease", [{}])], pending, lambda algorithm=None: best.get(algorithm or "als"), attempt,
        {id(t): 0 for t in best.values()}, "ndcg@20", time.monotonic() + 60, lambda algorithm, params: next(admitted),
        lambda items, run, recorded, lane_order=None: [run(item) for item in items], True,
    )
    assert ending == "the budget ran out: a later trial did not fit what was left of it"
