"""The weight of an event is one rule, applied to plain values, arrays, Arrow columns and Spark."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from recommender.weights import DEFAULT_EVENT_WEIGHTS, weigh_event, weigh_events

TYPES = ["purchase", "cart", "view", "purchase", "returned", "cart"]
QUANTITIES = [2.0, 1.0, 3.0, 0.5, 1.0, float("inf")]
# purchase 1 x 2, cart 0.5 x 1, view 0.1 x 3, purchase 1 x 0.5, a type without weight, an infinite quantity
EXPECTED = [2.0, 0.5, 0.3, 0.5, 0.0, 0.0]


def test_one_event_at_a_time():
    assert [weigh_event(t, q, DEFAULT_EVENT_WEIGHTS) for t, q in zip(TYPES, QUANTITIES)] == pytest.approx(EXPECTED)
    assert weigh_event("view", 1.0, {"view": -1.0}) == 0.0  # a negative weight is not a purchase signal


@pytest.mark.parametrize("column", [np.array(TYPES), pa.chunked_array([TYPES[:2], TYPES[2:]]), pa.array(TYPES)])
def test_arrays_and_arrow_columns_agree_with_one_at_a_time(column):
    np.testing.assert_allclose(weigh_events(column, np.array(QUANTITIES), DEFAULT_EVENT_WEIGHTS), EXPECTED)


def test_no_type_column_means_purchases_and_a_missing_type_weighs_nothing():
    np.testing.assert_allclose(weigh_events(None, np.array([1.0, 2.0]), {"purchase": 3.0}), [3.0, 6.0])
    np.testing.assert_allclose(weigh_events(pa.array(["cart", None]), np.ones(2), DEFAULT_EVENT_WEIGHTS), [0.5, 0.0])


@pytest.mark.slow
def test_spark_applies_the_same_rule(local_spark):
    from pyspark.sql import functions as F

    from recommender.weights import spark_weigh_events

    frame = local_spark.createDataFrame(
        [(t, str(q)) for t, q in zip(TYPES[:4], QUANTITIES[:4])] + [("view", "-1"), ("view", "abc")], "event_type string, quantity string"
    )
    weights = frame.select(spark_weigh_events(F.col("event_type"), F.col("quantity"), DEFAULT_EVENT_WEIGHTS).alias("w")).collect()
    values = [row["w"] for row in weights]
    assert values[:4] == pytest.approx(EXPECTED[:4]) and values[4:] == [None, None]  # bad quantities: a bad row
