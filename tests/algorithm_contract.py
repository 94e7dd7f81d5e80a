"""The contract every algorithm honours, as a mixin: each model's test class is a few lines."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.algorithms import create_algorithm
from recommender.errors import NotFittedError

GROUP_A, GROUP_B = set(range(5)), set(range(5, 10))


def history(items, n_items=10) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(len(items), np.float32), (np.zeros(len(items), int), items)), shape=(1, n_items))


class AlgorithmContract:
    """Subclasses set ``name`` and ``params`` (small, fast settings for 20 x 10 data)."""

    name: str = ""
    params: dict = {}
    personalised = True
    fit_progress = False  # whether its fit shows a progress bar (when asked)

    @pytest.fixture
    def fitted(self, known_answer_matrix):
        return create_algorithm(self.name, self.params).fit(known_answer_matrix)

    def test_fit_returns_self_and_sets_state(self, known_answer_matrix):
        algorithm = create_algorithm(self.name, self.params)
        assert algorithm.fit(known_answer_matrix) is algorithm
        assert algorithm.n_items_ == 10

    def test_a_fit_shows_progress_only_when_asked_and_names_itself(self, known_answer_matrix, capfd):
        create_algorithm(self.name, self.params).fit(known_answer_matrix)
        assert "%|" not in capfd.readouterr().err
        create_algorithm(self.name, self.params).fit(known_answer_matrix, show_progress=True)
        bars = [line.strip() for line in capfd.readouterr().err.replace("\r", "\n").splitlines() if "%|" in line]
        # No bar without a name: the algorithm's own, or a blend's part's.
        assert all(line.startswith(f"fitting {self.name}: ") or (self.name == "blend" and line.startswith("fitting ")) for line in bars), bars
        assert bool(bars) == self.fit_progress

    def test_unfitted_model_says_so(self):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            create_algorithm(self.name, self.params).recommend(history([0]), 3)

    def test_recommends_from_the_customers_taste_group(self, fitted):
        if not self.personalised:
            pytest.skip("not a personalised algorithm")
        items, scores = fitted.recommend(history([0, 1]), 3)
        assert set(items[0].tolist()) == {2, 3, 4}
        items, _ = fitted.recommend(history([7, 8]), 3)
        assert set(items[0].tolist()) == {5, 6, 9}

    def test_scores_are_sorted_and_purchases_excluded(self, fitted):
        items, scores = fitted.recommend(history([0, 1]), 8)
        assert not {0, 1} & set(items[0].tolist())
        assert np.all(np.diff(scores[0]) <= 0)

    def test_include_purchased_and_allowed_mask(self, fitted):
        items, _ = fitted.recommend(history([0]), 10, exclude_seen=False)
        assert 0 in items[0]
        allowed = np.zeros(10, dtype=bool)
        allowed[[3, 8]] = True
        items, _ = fitted.recommend(history([0]), 5, allowed=allowed)
        assert set(items[0][items[0] >= 0].tolist()) == {3, 8}
        assert (items[0] == -1).sum() == 3

    def test_batch_matches_single_rows(self, fitted, known_answer_matrix):
        customers = np.arange(20)
        batch, batch_scores = fitted.recommend(known_answer_matrix, 2, customers=customers)
        for customer in (0, 13):
            single, single_scores = fitted.recommend(known_answer_matrix[customer], 2, customers=np.array([customer]))
            np.testing.assert_allclose(single_scores[0], batch_scores[customer], rtol=1e-5, atol=1e-6)
            # The same items, place by place, up to items tied exactly in exact arithmetic (the
            # two-group data has such ties; which one a BLAS rounds ahead depends on the CPU).
            scores = np.asarray(fitted.scores(known_answer_matrix[customer], np.array([customer])))[0]
            np.testing.assert_allclose(scores[single[0]], scores[batch[customer]], rtol=1e-5, atol=1e-6)
            apart = np.abs(scores[:, None] - scores[None, :]) > 1e-4 * max(1.0, np.abs(scores).max())
            for place, (one, other) in enumerate(zip(single[0], batch[customer])):
                if apart[one][np.setdiff1d(np.arange(len(scores)), one)].all():  # no near-tie: the same item
                    assert one == other, (customer, place)

    def test_a_new_purchase_changes_the_next_answer(self, fitted):
        before, _ = fitted.recommend(history([0, 1]), 3)
        after, _ = fitted.recommend(history([0, 1, int(before[0][0])]), 3)
        assert before[0][0] not in after[0]

    def test_similar_items_stay_in_the_group(self, fitted):
        if not self.personalised:
            with pytest.raises(NotImplementedError, match="similarity"):
                fitted.similar_items(np.array([0]), 3)
            return
        items, _ = fitted.similar_items(np.array([0, 6]), 4)
        assert set(items[0].tolist()) == GROUP_A - {0}
        assert set(items[1].tolist()) == GROUP_B - {6}

    def test_explain_names_the_purchases_that_drove_it(self, fitted):
        reasons = fitted.explain(history([0, 1, 7]), 2)
        if not self.personalised:
            assert reasons == []
            return
        assert reasons, "a personalised model explains its recommendation"
        assert reasons[0][0] in (0, 1), "the same-group purchases drive item 2, not item 7"

    def test_top_contributors_match_one_row_attribution(self, fitted, known_answer_matrix):
        if not self.personalised:
            return
        # The training customers plus a new one (not a training row: customer -1) whose mixed
        # history (group A and item 7) makes the attribution non-trivial.
        matrix = sp.csr_matrix(sp.vstack([known_answer_matrix, history([0, 1, 7])]))
        customers = np.append(np.arange(20), -1)
        items, _ = fitted.recommend(matrix, 3, customers=customers)
        items[5, 2] = -1  # a padded slot stays unexplained
        found = fitted.top_contributors(matrix, customers, items, 2)
        assert found.shape == (21, 3, 2) and (found[5, 2] == -1).all()
        for customer in (0, 5, 13, 20):
            for slot, item in enumerate(items[customer]):
                if item < 0:
                    continue
                weights = fitted.contributions(matrix[customer], np.array([item]), int(customers[customer]))[0]
                strong = weights > 1e-5 * np.abs(fitted.contributions(matrix[customer], items[customer][items[customer] >= 0], int(customers[customer]))).max()
                expected = [j for j in np.argsort(-weights, kind="stable")[:2] if strong[j]]
                named = [int(j) for j in found[customer, slot] if j >= 0]
                assert len(named) == len(expected), (customer, slot)
                # The same purchases, or (on exact ties broken by rounding) equally strong ones.
                weight_of = dict(zip(matrix[customer].indices.tolist(), weights))
                np.testing.assert_allclose([weight_of[j] for j in named], weights[expected], rtol=1e-4, err_msg=str((customer, slot)))
                # Known answer: only same-group purchases drive an item, never the other group's.
                group = GROUP_A if item in GROUP_A else GROUP_B
                assert set(found[customer, slot].tolist()) - {-1} <= group, (customer, slot, found[customer, slot])

    def test_save_and_load_arrays_round_trip(self, fitted, known_answer_matrix):
        arrays = fitted.fitted_arrays()
        assert all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays.values())
        clone = type(fitted).from_arrays(fitted.params(), arrays, 10)
        np.testing.assert_allclose(clone.scores(known_answer_matrix), fitted.scores(known_answer_matrix), rtol=1e-5)

    def test_same_seed_same_model(self, known_answer_matrix):
        first = create_algorithm(self.name, self.params).fit(known_answer_matrix)
        second = create_algorithm(self.name, self.params).fit(known_answer_matrix)
        np.testing.assert_allclose(first.scores(known_answer_matrix), second.scores(known_answer_matrix), rtol=1e-5)

    def test_rejects_empty_and_negative_input(self):
        with pytest.raises(ValueError, match="no interactions"):
            create_algorithm(self.name, self.params).fit(sp.csr_matrix((3, 3), dtype=np.float32))
        with pytest.raises(ValueError, match="negative"):
            create_algorithm(self.name, self.params).fit(sp.csr_matrix(np.array([[-1.0, 1.0]], dtype=np.float32)))
