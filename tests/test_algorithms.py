"""Every registered algorithm runs through the same contract."""

import importlib.util

import numpy as np
import pytest

from recommender.algorithms import ALGORITHMS, create_algorithm, parse_params
from tests.algorithm_contract import AlgorithmContract
from tests.conftest import two_group_matrix


class TestALS(AlgorithmContract):
    name = "als"
    fit_progress = True
    params = {"factors": 2, "regularization": 0.1, "iterations": 15, "alpha": 1.0}

    def test_a_remembered_fold_in_serves_only_the_same_history(self, known_answer_matrix):
        import scipy.sparse as sp

        fitted = create_algorithm(self.name, self.params).fit(known_answer_matrix)
        def fresh_contributions(row):  # a model that never solved another history
            return create_algorithm(self.name, self.params).fit(known_answer_matrix).contributions(row, items)

        first = sp.csr_matrix(np.array([[1.0, 1.0, 0, 0, 0, 0, 0, 0, 0, 0]], dtype=np.float32))
        same_items_other_weights = sp.csr_matrix(np.array([[1.0, 3.0, 0, 0, 0, 0, 0, 0, 0, 0]], dtype=np.float32))
        other_items = sp.csr_matrix(np.array([[0, 0, 0, 0, 0, 1.0, 1.0, 0, 0, 0]], dtype=np.float32))
        items = np.arange(10)
        rows = (first, same_items_other_weights, other_items)
        expected = [fresh_contributions(row) for row in rows]
        for before in rows:
            for row, answer in zip(rows, expected):
                fitted.customer_vectors(before)  # leaves that history's factorisation behind
                np.testing.assert_allclose(fitted.contributions(row, items), answer, rtol=1e-6)


    def test_a_served_answer_copies_the_factors_in_norm_order_only_below_the_limit(self, known_answer_matrix, monkeypatch):
        from recommender.algorithms import factors
        from recommender.algorithms.base import Algorithm

        row = known_answer_matrix[:1]
        for limit, copied in ((2**30, True), (0, False)):
            monkeypatch.setattr(factors, "_SERVED_COPY_LIMIT_BYTES", limit)
            fitted = create_algorithm(self.name, self.params).fit(known_answer_matrix)
            fitted.warm_up()
            answer = fitted.recommend(row, 4)
            assert (fitted._norm_order_cache is not None) == copied
            # Scoring every item gives the same scores (the group's items tie, so their order may differ).
            np.testing.assert_allclose(answer[1], Algorithm.recommend(fitted, row, 4)[1], rtol=1e-5)


class TestGraphFilter(AlgorithmContract):
    # Rank 6: three directions per 5-item group, so the sharpening step (which leaves out
    # each group's stationary direction) has something to subtract.
    name = "graph-filter"
    params = {"rank": 6}


class TestGraphFilterUnsharpened(AlgorithmContract):
    # The blend alone (sharpening off), as GF-CF-style filters serve it.
    name = "graph-filter"
    params = {"rank": 2, "sharpening": 0.0}


class TestBPR(AlgorithmContract):
    name = "bpr"
    fit_progress = True
    params = {"factors": 8, "iterations": 300, "learning_rate": 0.05}


class TestItemKNNCosine(AlgorithmContract):
    name = "item-knn"
    fit_progress = True
    params = {"neighbours": 10}


class TestItemKNNBM25(AlgorithmContract):
    name = "item-knn-bm25"
    fit_progress = True
    params = {"neighbours": 10}


class TestEASE(AlgorithmContract):
    # A small penalty lets EASE learn that, in the rotating pattern, buyers of 0 and 1
    # never buy 3 (a negative weight); 5 keeps every same-group item above the other group's.
    name = "ease"
    params = {"l2": 5.0}

    def test_refuses_a_catalogue_above_its_memory_limit(self, known_answer_matrix):
        with pytest.raises(ValueError, match=r"dense 10 x 10 item matrix .* above its memory limit"):
            create_algorithm(self.name, {"memory_limit_gb": 1e-7}).fit(known_answer_matrix)

    def test_matches_the_closed_form(self, known_answer_matrix):
        fitted = create_algorithm(self.name, self.params).fit(known_answer_matrix)
        x = np.log2(1 + known_answer_matrix.toarray().astype(np.float64))
        precision = np.linalg.inv(x.T @ x + 5.0 * np.eye(10))
        expected = np.eye(10) - precision / np.diag(precision)
        np.fill_diagonal(expected, 0.0)
        np.testing.assert_allclose(fitted.weights_, expected, atol=1e-5)


class TestBlend(AlgorithmContract):
    # The contract's small settings of two parts that score on unrelated scales.
    name = "blend"
    fit_progress = True  # its ALS part's bar
    params = {"first": "graph-filter", "first_params": {"rank": 6}, "second": "als",
              "second_params": TestALS.params, "weight": 0.4}


class TestMostPopular(AlgorithmContract):
    name = "popular"
    personalised = False


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("pyspark") is None, reason="pyspark is not installed: pip install '.[spark]' (make test installs it)")
@pytest.mark.usefixtures("local_spark")
class TestSparkALS(AlgorithmContract):
    name = "spark-als"
    params = {"factors": 2, "regularization": 0.01, "iterations": 15, "alpha": 1.0}

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls):
        # One Spark fit shared by the class: each fit is seconds of JVM work, and no test modifies it.
        return create_algorithm(cls.name, cls.params).fit(two_group_matrix())

    def test_fold_in_reproduces_the_vectors_spark_learned(self, fitted, known_answer_matrix):
        # Spark updates customers last, so folding a training customer in against the
        # final item factors (same objective, ALS-WR ridge) must give Spark's vector.
        folded = fitted.customer_vectors(known_answer_matrix)
        np.testing.assert_allclose(folded, fitted.customer_factors_, atol=1e-4)


def test_every_registered_algorithm_has_a_contract_test():
    tested = {cls.name for cls in AlgorithmContract.__subclasses__()}
    assert tested == set(ALGORITHMS)


def test_params_are_typed_and_checked():
    assert parse_params("als", ["factors=8", "alpha=2"]) == {"factors": 8, "alpha": 2.0}
    with pytest.raises(ValueError, match="no parameter 'factor'"):
        parse_params("als", ["factor=8"])
    with pytest.raises(ValueError, match="must be int"):
        parse_params("als", ["factors=many"])
    with pytest.raises(ValueError, match="unknown algorithm"):
        create_algorithm("deep-magic")
    # Optional parameters take "auto" (or none/null, or JSON null) for "choose for me".
    assert parse_params("graph-filter", ["rank=auto", "rank_share=0.1"]) == {"rank": None, "rank_share": 0.1}
    assert parse_params("graph-filter", {"rank": None}) == {"rank": None}
    assert parse_params("graph-filter", ["rank=64"]) == {"rank": 64}
    with pytest.raises(ValueError, match="must be int"):
        parse_params("graph-filter", ["rank=big"])


def test_a_float_parameter_that_is_no_finite_number_is_refused():
    # NaN passed every range check and failed inside the fit with implicit's traceback.
    for given in (["regularization=nan"], ["alpha=inf"], {"alpha": float("nan")}, {"regularization": float("-inf")}):
        with pytest.raises(ValueError, match="must be a finite number"):
            parse_params("als", given)
    assert parse_params("graph-filter", ["sharpening=auto"]) == {"sharpening": None}  # "choose for me" is no number to check


def test_graph_filter_keeps_a_share_of_the_spectrum_unless_told_a_rank():

    matrix = sp_random_store()
    def kept(**params):
        fitted = create_algorithm("graph-filter", params).fit(matrix)
        assert fitted.fitted_settings()["rank"] == fitted.singular_vectors_.shape[1]
        return fitted.singular_vectors_.shape[1]
    # The automatic rank is chosen on held-out purchases among the share, its half and its quarter.
    assert kept() in (2, 5, 10)  # 2% of 500 items
    assert kept(rank_share=0.1) in (12, 25, 50)
    assert kept(rank=7) == 7  # an explicit rank wins over the share
    assert kept(rank=7, sharpening=0.0) == 7
    assert kept(rank_share=1.0) in (74, 149, 299)  # never more than the matrix has (min(shape) - 1)
    with pytest.raises(ValueError, match="rank_share"):
        kept(rank_share=0.0)


@pytest.mark.parametrize("sharpening", [0.0, 0.7])
@pytest.mark.parametrize("normalise", [True, False])
def test_graph_filter_contributions_add_up_to_the_score(known_answer_matrix, normalise, sharpening):
    import numpy as np

    from tests.algorithm_contract import history

    model = create_algorithm("graph-filter", {"rank": 3, "normalise_parts": normalise, "sharpening": sharpening}).fit(known_answer_matrix)
    row = history([0, 1, 7])
    items = np.array([2, 3, 8])
    np.testing.assert_allclose(model.contributions(row, items).sum(axis=1), model.scores(row)[0, items], rtol=1e-4, atol=1e-7)


def test_graph_filter_explains_a_training_customer_the_same_by_index_or_by_history(known_answer_matrix):
    import numpy as np

    model = create_algorithm("graph-filter", {"rank": 3}).fit(known_answer_matrix)
    items = np.array([3, 4, 8])
    for customer in (0, 12):
        row = known_answer_matrix[customer]
        np.testing.assert_allclose(model.contributions(row, items, customer), model.contributions(row, items), rtol=1e-4, atol=1e-7)


def older_graph_filter(model):
    """The same fitted model as a folder written before 2026-12-03 loads it: the low-pass
    part divided by its L1 norm, w as configured."""
    newer = ("norm_ratio", "norm_gram")
    arrays = {name: array for name, array in model.fitted_arrays().items() if name not in newer}
    return type(model).from_arrays(model.params(), arrays, model.n_items_)


def test_graph_filter_divides_the_low_pass_part_by_a_norm_known_in_the_basis(known_answer_matrix):
    """c·|I(r)|₂ from the rank x rank matrix equals the norm of the dense low-pass part, and an
    older folder still divides by |I(r)|₁."""
    import numpy as np

    model = create_algorithm("graph-filter", {"rank": 3, "sharpening": 0.0}).fit(known_answer_matrix)
    binary = (known_answer_matrix > 0).astype(np.float64).toarray()
    smooth = ((binary * model.low_rank_in_) @ model.singular_vectors_ @ model.singular_vectors_.T) * model.low_rank_out_
    walk, walk_norm = model._walk(known_answer_matrix)
    l2 = np.linalg.norm(smooth, axis=1)
    assert model.norm_ratio_ > 1  # a median |I|₁ / |I|₂
    np.testing.assert_allclose(model.smooth_norms(known_answer_matrix), model.norm_ratio_ * l2, rtol=1e-4)
    expected = walk / walk_norm + 0.5 * smooth / (model.norm_ratio_ * l2[:, None])
    np.testing.assert_allclose(model.scores(known_answer_matrix), expected, rtol=1e-4, atol=1e-6)
    older = older_graph_filter(model)
    l1 = np.abs(smooth).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(older.scores(known_answer_matrix), walk / walk_norm + 0.5 * smooth / l1, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(older.scores(known_answer_matrix[:1]), (walk / walk_norm + 0.5 * smooth / l1)[:1], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "dense_items, sparse_entries, dense_reach, route",
    [(10**6, 10**9, 0, np.ndarray), (10**6, 7, 0, np.ndarray), (0, 10**9, 0, "sparse"), (0, 0, 0, None), (0, 0, 10**9, None)],
    ids=["dense", "dense-in-groups", "sparse", "through-customers", "through-customers-reach-held-dense"],
)
def test_graph_filter_walks_the_same_through_items_or_customers(known_answer_matrix, monkeypatch, dense_items, sparse_entries, dense_reach, route):
    """L(r) = (r D_i^-a) Rᵀ D_u^-b R D_i^-c by every route: the co-buying matrix held dense
    (built in one product or summed over groups of customers), held sparse, or none (too large),
    then with the co-buyers' reach in a sparse or a dense matrix."""
    import scipy.sparse as sp

    from recommender.algorithms import graph_filter

    monkeypatch.setattr(graph_filter, "DENSE_WALK_ITEMS", dense_items)
    monkeypatch.setattr(graph_filter, "SPARSE_WALK_ENTRIES", sparse_entries)
    monkeypatch.setattr(graph_filter, "DENSE_REACH_GAIN", dense_reach)  # 0: never dense, 10**9: always (within its memory cap)
    params = {"rank": 3, "sharpening": 0.0, "history_exponent": 0.4, "co_buyer_exponent": 0.8, "popularity_exponent": 0.3}
    model = create_algorithm("graph-filter", params).fit(known_answer_matrix)
    binary = (known_answer_matrix > 0).astype(np.float64).toarray()
    item_degree, customer_degree = binary.sum(axis=0), binary.sum(axis=1)
    expected = (binary * item_degree**-0.4) @ binary.T @ (binary * customer_degree[:, None] ** -0.8) * item_degree**-0.3
    walk, walk_norm = model._walk(known_answer_matrix)
    assert walk.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(walk, expected, rtol=1e-5)
    np.testing.assert_allclose(walk_norm.ravel(), expected.sum(axis=1), rtol=1e-5)
    found = model.item_walk()
    if route == "sparse":
        assert sp.issparse(found)
    else:
        assert found is None if route is None else isinstance(found, route)


@pytest.mark.parametrize("sparse_held", [False, True], ids=["dense", "sparse"])
def test_graph_filter_explains_the_same_through_the_co_buying_matrix(known_answer_matrix, monkeypatch, sparse_held):
    """Reasons read from the co-buying matrix equal those walked through the customers."""
    from recommender.algorithms import graph_filter

    model = create_algorithm("graph-filter", {"rank": 6, "sharpening": 0.35}).fit(known_answer_matrix)
    customers = np.arange(known_answer_matrix.shape[0])
    items, _ = model.recommend(known_answer_matrix, 4, customers=customers)

    def explained():
        model._forget_derived()
        return (model.contribution_weights(known_answer_matrix, customers, items),
                model.contributions(known_answer_matrix[5], items[5]), model.item_walk())

    monkeypatch.setattr(graph_filter, "DENSE_WALK_ITEMS", 0)
    monkeypatch.setattr(graph_filter, "SPARSE_WALK_ENTRIES", 10**9 if sparse_held else 0)
    batch, one, held = explained()
    assert (held is not None) == sparse_held
    monkeypatch.setattr(graph_filter, "DENSE_WALK_ITEMS", 10**6)
    batch_held, one_held, held = explained()
    assert isinstance(held, np.ndarray)
    np.testing.assert_allclose(batch_held, batch, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(one_held, one, rtol=1e-5, atol=1e-8)
    assert np.abs(batch).max() > 0


def test_graph_filter_starts_its_basis_from_another_fits_basis():
    """Started from the exact top singular vectors of the same items, one product and
    Rayleigh-Ritz keep them (the start's span is invariant under the item graph); a start for
    other items is ignored."""
    import numpy as np

    matrix = sp_random_store()
    settings = {"rank": 10, "sharpening": 0.0}
    exact = create_algorithm("graph-filter", {**settings, "svd_solver": "exact"}).fit(matrix)
    assert not exact.warm_started_
    warm = create_algorithm("graph-filter", settings)
    warm.start_from(exact.start_state())
    warm.fit(matrix)
    assert warm.warm_started_
    # The same subspace: every principal angle between the two bases is zero.
    np.testing.assert_allclose(np.linalg.svd(exact.singular_vectors_.T @ warm.singular_vectors_, compute_uv=False), 1.0, atol=1e-4)
    elsewhere = create_algorithm("graph-filter", settings)
    elsewhere.start_from({"singular_vectors": exact.singular_vectors_[:-1]})  # one item fewer
    elsewhere.fit(matrix)
    cold = create_algorithm("graph-filter", settings).fit(matrix)
    assert not elsewhere.warm_started_
    np.testing.assert_array_equal(elsewhere.singular_vectors_, cold.singular_vectors_)


def test_graph_filter_basis_is_the_top_singular_subspace_by_gram_matrix_or_by_qr(monkeypatch):
    """The basis's Rayleigh-Ritz step works from the block's Gram matrix where its columns are
    well apart, and falls back to QR where they are not (a catalogue no wider than the block,
    with items nobody bought): both give the exact top singular values and an orthonormal basis
    of the exact top singular subspace."""
    import numpy as np
    import scipy.sparse as sp

    from recommender.algorithms import graph_filter

    monkeypatch.setattr(graph_filter, "GRAM_RITZ_WORK", 0)  # small blocks too (by default they take the QR)
    monkeypatch.setattr(graph_filter, "GRAM_ROWS", 64)  # the Gram matrix summed over several slices of items
    routes = []
    by_gram = graph_filter._ritz_by_gram
    monkeypatch.setattr(graph_filter, "_ritz_by_gram", lambda *a: routes.append(found := by_gram(*a)) or found)
    # Twenty strong directions (singular values 20 down to 8) over random purchases (about 5):
    # the top 20 are well apart from the rest, so a few iterations find them to 1e-3.
    rng = np.random.default_rng(1)
    strong = np.linalg.qr(rng.standard_normal((300, 20)))[0] @ np.diag(np.linspace(20, 8, 20)) @ np.linalg.qr(rng.standard_normal((500, 20)))[0].T
    wide = sp.csr_matrix((sp_random_store().toarray() + strong).astype(np.float32))
    narrow = sp_random_store()[:, :40].tolil()
    narrow[:, :5] = 0  # five items nobody bought: the item graph is singular
    for matrix, rank in ((wide, 20), (narrow.tocsr(), 12)):
        values, vectors = graph_filter.item_basis(matrix, rank, 8, 0)
        left, exact_values, exact_vectors = np.linalg.svd(matrix.toarray().astype(np.float64))
        np.testing.assert_allclose(values, exact_values[:rank], rtol=1e-3)
        np.testing.assert_allclose(vectors.T @ vectors, np.eye(rank), atol=1e-5)
        angles = np.linalg.svd(exact_vectors[:rank] @ vectors, compute_uv=False)
        np.testing.assert_allclose(angles, 1.0, atol=1e-3)
    assert routes[0] is not None and routes[1] is None  # the Gram matrix, then QR


def sp_random_store():
    import numpy as np
    import scipy.sparse as sp

    return sp.random(300, 500, density=0.05, format="csr", random_state=np.random.default_rng(0), dtype=np.float32)


def test_graph_filter_reasons_for_a_batch_just_scored_reuse_its_norms(known_answer_matrix):
    """An older folder's top lists score a batch, then explain it: |I(r)|₁ is not computed a second time."""
    import numpy as np

    from recommender.algorithms.graph_filter_attribution import RecentNorms

    model = older_graph_filter(create_algorithm("graph-filter", {"rank": 3}).fit(known_answer_matrix))
    customers = np.arange(known_answer_matrix.shape[0])
    history = known_answer_matrix[customers]
    items, _ = model.recommend(history, 4, customers=customers)
    memo, recalled = model.recent_smooth_norms, []
    model.recent_smooth_norms = type("Spy", (RecentNorms,), {"recall": lambda self, b: recalled.append(memo.recall(b)) or recalled[-1]})()
    reasons = model.top_contributors(history, customers, items, 2)
    assert len(recalled) == 1 and recalled[0] is not None and len(recalled[0]) == len(customers)
    model.recent_smooth_norms = RecentNorms()  # forgotten: computed again, to the same reasons
    np.testing.assert_array_equal(model.top_contributors(history, customers, items, 2), reasons)


def test_graph_filter_loads_folders_that_stored_training_norms(known_answer_matrix):
    """Folders written from 2026-11-23 to 2026-11-30 carry every training customer's |I(r)|₁."""
    import numpy as np

    model = older_graph_filter(create_algorithm("graph-filter", {"rank": 3}).fit(known_answer_matrix))
    arrays = model.fitted_arrays()
    assert "smooth_norms" not in arrays
    arrays = {name: array for name, array in arrays.items() if name not in ("norm_ratio", "norm_gram")}
    arrays["smooth_norms"] = model.smooth_norms(known_answer_matrix).astype(np.float32)
    older = type(model).from_arrays(model.params(), arrays, 10)
    assert len(older.smooth_norms_) == known_answer_matrix.shape[0]
    row, items = known_answer_matrix[0], np.array([3, 4])
    np.testing.assert_allclose(older.contributions(row, items, 0), model.contributions(row, items, 0), rtol=1e-4, atol=1e-7)


def test_graph_filter_sharpening_subtracts_one_step_of_the_item_graphs_top_part(known_answer_matrix):
    import numpy as np

    binary = (known_answer_matrix > 0).astype(np.float64).toarray()
    normalised = binary / np.sqrt(np.maximum(binary.sum(axis=1), 1))[:, None] / np.sqrt(np.maximum(binary.sum(axis=0), 1))
    graph = normalised.T @ normalised  # P = D_i^-1/2 R' D_u^-1 R D_i^-1/2
    values, vectors = np.linalg.eigh(graph)
    top = np.argsort(-values)[:6]
    # Its rank-6 part V S^2 V', less the two eigenvalue-1 directions (one per 5-item group).
    # Rank 6 holds the whole 4-fold eigenvalue 0.29, so the part is unique.
    assert np.allclose(values[top], [1, 1, 0.29, 0.29, 0.29, 0.29], atol=0.01)
    top = top[values[top] < 0.99]
    graph_top = (vectors[:, top] * values[top]) @ vectors[:, top].T
    blurred = create_algorithm("graph-filter", {"rank": 6, "sharpening": 0.0}).fit(known_answer_matrix).scores(known_answer_matrix)
    sharpened = create_algorithm("graph-filter", {"rank": 6, "sharpening": 0.7}).fit(known_answer_matrix).scores(known_answer_matrix)
    np.testing.assert_allclose(sharpened, blurred - 0.7 * blurred @ graph_top, rtol=1e-4, atol=1e-6)


def test_graph_filter_batched_attribution_through_the_cached_gram_rows(known_answer_matrix, monkeypatch):
    import numpy as np

    from recommender.algorithms import graph_filter_attribution

    model = create_algorithm("graph-filter", {"rank": 6, "sharpening": 0.7}).fit(known_answer_matrix)
    items, _ = model.recommend(known_answer_matrix, 3, customers=np.arange(20))
    direct = model.top_contributors(known_answer_matrix, np.arange(20), items)
    monkeypatch.setattr(graph_filter_attribution, "FEW_PURCHASES", 0)  # large batches take V G from the cache
    model.contributions(known_answer_matrix[3], items[3])
    assert model._gram_rows_cache is None  # one customer (a server's live answer) never builds it
    np.testing.assert_array_equal(model.top_contributors(known_answer_matrix, np.arange(20), items), direct)
    assert model._gram_rows_cache is not None


def test_graph_filter_batches_the_contributions_it_gives_one_row_at_a_time(known_answer_matrix):
    import numpy as np

    from recommender.algorithms.base import Algorithm

    model = create_algorithm("graph-filter", {"rank": 6}).fit(known_answer_matrix)
    customers = np.arange(20)
    items, _ = model.recommend(known_answer_matrix, 3, customers=customers)
    items[3, 1] = -1  # a padded slot: no contributions
    batched = model.contribution_weights(known_answer_matrix, customers, items)
    assert batched.shape == (20, 3, 3) and not batched[3, 1].any()
    np.testing.assert_allclose(batched, Algorithm.contribution_weights(model, known_answer_matrix, customers, items), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["als", "bpr"])
def test_factor_models_batch_the_contributions_they_give_one_row_at_a_time(known_answer_matrix, name):
    import numpy as np

    from recommender.algorithms.base import Algorithm

    params = {"als": TestALS.params, "bpr": TestBPR.params}[name]
    model = create_algorithm(name, params).fit(known_answer_matrix * 3)  # weights above 1: confidence matters
    customers = np.arange(20)
    matrix = known_answer_matrix * 3
    items, _ = model.recommend(matrix, 3, customers=customers)
    items[3, 1] = -1
    np.testing.assert_allclose(model.contribution_weights(matrix, customers, items),
                               Algorithm.contribution_weights(model, matrix, customers, items), rtol=1e-4, atol=1e-7)
