"""What history means: recency half-life, repeats, returns under decay, fold-in at serving, buy-again share."""

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.interactions import Interactions, repeat_purchases
from recommender.purchases import PurchaseLog
from recommender.topn import history_row
from recommender.vocabulary import IdVocabulary
from recommender.weights import HistoryWeighting, net_returns

DAY = 86_400


def make_log(events: list[tuple[str, str, float, int]]) -> PurchaseLog:
    """(customer, item, weight, day) events."""
    customers = IdVocabulary(sorted({e[0] for e in events}))
    items = IdVocabulary(sorted({e[1] for e in events}))
    return PurchaseLog(
        customers,
        items,
        customers.lookup([e[0] for e in events]).astype(np.int32),
        items.lookup([e[1] for e in events]).astype(np.int32),
        np.array([e[2] for e in events], dtype=np.float32),
        np.array([e[3] * DAY for e in events], dtype=np.int64),
    )


def cells(log, weighting) -> dict[tuple[str, str], float]:
    matrix = Interactions.from_log(log, weighting).matrix.tocoo()
    return {(log.customers.ids[r], log.items.ids[c]): float(v) for r, c, v in zip(matrix.row, matrix.col, matrix.data)}


def test_a_half_life_decays_each_event_by_its_age_before_the_newest_event():
    log = make_log([("u", "a", 1, 0), ("u", "b", 1, 10), ("u", "a", 1, 20), ("v", "b", 2, 15)])
    assert cells(log, HistoryWeighting(half_life_days=10)) == pytest.approx(
        {("u", "a"): 0.25 + 1.0, ("u", "b"): 0.5, ("v", "b"): 2 * 0.5**0.5}
    )
    assert cells(log, HistoryWeighting()) == {("u", "a"): 2.0, ("u", "b"): 1.0, ("v", "b"): 2.0}  # none: today's sums


@pytest.mark.parametrize(
    "repeats, expected",
    [("count", [1.0, 3.0, 15.0, 0.1]), ("log", [1.0, 2.0, 4.0, np.log2(1.1)]), ("once", [1.0, 1.0, 1.0, 0.1])],
)
def test_repeats_count_compress_or_cap_repeated_purchases(repeats, expected):
    log = make_log([("u", "a", 1, 0)] + [("u", "b", 1, 0)] * 3 + [("u", "c", 5, 0)] * 3 + [("u", "d", 0.1, 0)])
    got = cells(log, HistoryWeighting(repeats=repeats))
    assert [got["u", item] for item in "abcd"] == pytest.approx(expected)


def test_returns_take_their_share_off_decayed_purchases_and_never_more():
    # Bought 10 on day 0, sent 2 back on day 20: 8/10 of the decayed purchase is left.
    log = make_log([("u", "a", 10, 0), ("u", "a", -2, 20), ("u", "b", 1, 0), ("u", "b", -3, 1), ("v", "c", -1, 5)])
    assert cells(log, HistoryWeighting(half_life_days=10)) == pytest.approx({("u", "a"): 10 * 0.25 * 0.8})
    assert cells(log, HistoryWeighting()) == {("u", "a"): 8.0}
    np.testing.assert_allclose(net_returns([10, 1, 0], [2, 3, 1]), [8, 0, 0])


@pytest.mark.parametrize("repeats", ["count", "log", "once"])
def test_a_very_old_purchase_fades_but_still_counts_as_bought(repeats):
    # With repeats "log", log2(1 + 2**-100) rounded to 0 and the cell was dropped (a new user's
    # trial: one event dated 3,000 years ahead left one cell of the whole history).
    log = make_log([("u", "a", 1, 0), ("u", "b", 1, 3650)])
    assert 0 < cells(log, HistoryWeighting(half_life_days=1, repeats=repeats))["u", "a"] < 1e-29


def test_serving_keeps_a_faded_purchase_when_it_folds_new_events_in():
    weighting = HistoryWeighting(half_life_days=1, repeats="log")
    faded = weighting.repeated(np.array([2.0**-100]))
    assert faded[0] > 0
    assert weighting.fold_in(faded, np.zeros(1))[0] == pytest.approx(faded[0], rel=1e-6)  # no new event: unchanged


def test_weighting_is_validated_and_travels_as_plain_json():
    with pytest.raises(ValueError, match="half_life_days must be a positive"):
        HistoryWeighting(half_life_days=0)
    with pytest.raises(ValueError, match="repeats must be one of count, log, once"):
        HistoryWeighting(repeats="twice")
    weighting = HistoryWeighting(30.0, "log")
    assert HistoryWeighting.from_dict(weighting.to_dict()) == weighting and HistoryWeighting.from_dict(None).is_plain
    untimed = PurchaseLog(IdVocabulary(["u"]), IdVocabulary(["a"]), np.zeros(1, np.int32), np.zeros(1, np.int32), np.ones(1, np.float32))
    with pytest.raises(ValueError, match="needs event times"):
        Interactions.from_log(untimed, weighting)


@pytest.mark.parametrize(
    "weighting, stored, added, expected",
    [
        (HistoryWeighting(repeats="log"), 2.0, 4.0, 3.0),  # trained on 3 purchases (log2 4 = 2), 4 more: log2(1 + 7)
        (HistoryWeighting(repeats="once"), 0.1, 1.0, 1.0),  # a view, then a purchase: capped at one purchase
        (HistoryWeighting(repeats="once"), 1.0, 1.0, 1.0),
        (HistoryWeighting(half_life_days=7), 0.25, 1.0, 1.25),  # a new event is "now": full weight beside the decayed one
    ],
)
def test_serving_folds_new_events_in_as_training_would(weighting, stored, added, expected):
    training = sp.csr_matrix(np.array([[stored, 0.0, 0.5]], dtype=np.float32))
    row, customer = history_row(training, 0, [(0, added), (1, 1.0)], weighting)
    assert customer == -1 and row.indices.tolist() == [0, 1, 2]
    assert row.toarray()[0] == pytest.approx([expected, weighting.fold_in(np.zeros(1), np.ones(1))[0], 0.5])


def test_the_buy_again_share_of_a_time_split():
    # Before the cut: A bought x and y, B bought y. After: A buys x again and z, B buys w, C (new) buys x.
    train = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    test = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0]], dtype=np.float32))
    assert repeat_purchases(train, test) == {
        "test_pairs": 4, "repeat_pairs": 1, "repeat_share": 0.25,
        "test_customers": 3, "customers_with_repeats": 1, "customers_with_repeats_share": pytest.approx(1 / 3),
    }
