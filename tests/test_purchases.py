"""Reading purchase history: formats, aggregation, and errors that name file, line and column."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recommender.errors import DataError
from recommender.interactions import Interactions
from recommender.purchases import describe_skipped, load_purchases


def write(tmp_path, text, name="purchases.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_ids_stay_strings_and_repeats_sum_into_weights(tmp_path):
    path = write(
        tmp_path,
        "customer_id,item_id,quantity,event_type,timestamp\n"
        "007,0042,2,purchase,2025-03-01T10:00:00Z\n"
        "007,0042,1,purchase,1740823200\n"
        "7,0042,1,view,2025-03-02\n"
        "007,99,1,cart,2025-03-02 08:00:00+01:00\n",
    )
    log = load_purchases(path)
    assert sorted(log.customers.ids.tolist()) == ["007", "7"]  # never cast to numbers
    interactions = Interactions.from_log(log)
    matrix = interactions.matrix.toarray()
    c, i = interactions.customers.index("007"), interactions.items.index("0042")
    assert matrix[c, i] == pytest.approx(3.0)  # 2 x purchase + 1 x purchase
    assert matrix[interactions.customers.index("7"), i] == pytest.approx(0.1)  # a view
    assert matrix[c, interactions.items.index("99")] == pytest.approx(0.5)  # a cart
    assert log.timestamp[0] == 1740823200 and log.timestamp[1] == 1740823200
    assert log.timestamp[3] == 1740898800  # 08:00+01:00 is 07:00 UTC


def test_parquet_reads_the_same(tmp_path):
    table = pa.table({"customer_id": ["a", "b"], "item_id": [1, 2], "quantity": [1.0, 4.0]})
    pq.write_table(table, tmp_path / "p.parquet")
    log = load_purchases(tmp_path / "p.parquet")
    assert log.items.ids.tolist() == ["1", "2"]
    assert log.weight.tolist() == [1.0, 4.0]


def test_custom_event_weights(tmp_path):
    path = write(tmp_path, "customer_id,item_id,event_type\na,x,click\n")
    assert load_purchases(path, event_weights={"click": 0.25}).weight.tolist() == [0.25]


def test_a_file_of_which_no_row_weighs_above_0_names_its_types_and_the_weights(tmp_path):
    # Otherwise the run fails later, in terms of the algorithm's matrix or the choice's validation.
    shown = write(tmp_path, "customer_id,item_id,event_type\na,x,impression\nb,y,not_interested\n")
    with pytest.raises(DataError, match="no row has an event type weighted above 0") as caught:
        load_purchases(shown)
    assert "its event types: impression, not_interested; the weights: purchase=1, cart=0.5" in str(caught.value)
    assert str(shown) in str(caught.value)
    untyped = write(tmp_path, "customer_id,item_id\na,x\n", name="untyped.csv")
    with pytest.raises(DataError, match="no event_type column, so every row is a purchase; the weights: view=0.2"):
        load_purchases(untyped, event_weights={"view": 0.2})


@pytest.mark.parametrize(
    "text, line, column, message",
    [
        ("item_id\nx\n", 1, "customer_id", "required column is missing"),
        ("customer_id,item_id,timestamp\na,x,2025-01-01\nb,y,yesterday\n", 3, "timestamp", "neither ISO 8601 nor epoch"),
        ("customer_id,item_id,quantity\na,x,1\nb,y,-2\n", 3, "quantity", "positive"),
        ("customer_id,item_id,quantity\na,x,lots\n", 2, "quantity", "not a number"),
        ("customer_id,item_id,event_type\na,x,purchase\na,y,wishlist\n", 3, "event_type", "unknown event type"),
        ("customer_id,item_id,quantity\na,x,1\na,y,0\n", 3, "quantity", r"must be a positive number, not 0 or infinite \(value '0'\); fix"),
        ("customer_id,item_id,quantity\na,x,-2\n", 2, "quantity", "must be a positive number .value '-2'.; a negative quantity is a return only with --returns net"),
        ("customer_id,item_id\na,x\n,y\n", 3, "customer_id", "is empty"),
    ],
)
def test_bad_rows_name_file_line_and_column(tmp_path, text, line, column, message):
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=message) as caught:
        load_purchases(path)
    error = caught.value
    assert (error.line, error.column, error.path) == (line, column, str(path))
    assert f"line {line}" in str(error) and str(path) in str(error)


def test_empty_files_and_wrong_field_counts(tmp_path):
    with pytest.raises(DataError, match="file is empty"):
        load_purchases(write(tmp_path, ""))
    with pytest.raises(DataError, match="no data rows"):
        load_purchases(write(tmp_path, "customer_id,item_id\n"))
    with pytest.raises(DataError, match="line 3.*expected 2 fields"):
        load_purchases(write(tmp_path, "customer_id,item_id\na,x\nb,y,z\n"))
    with pytest.raises(DataError, match="not found"):
        load_purchases(tmp_path / "missing.csv")


def test_skip_mode_drops_and_counts_bad_rows(tmp_path):
    path = write(
        tmp_path,
        "customer_id,item_id,quantity,timestamp\n"
        "a,x,1,2025-01-01\n"
        "b,y,-1,2025-01-01\n"
        "c,z,1,not-a-date\n"
        "d,w,1,2025-01-01,extra\n"
        "e,v,2,2025-01-02\n",
    )
    log = load_purchases(path, on_bad_rows="skip")
    assert sorted(log.customers.ids.tolist()) == ["a", "e"]
    assert log.skipped == {
        "quantity must be a positive number": 1,
        "timestamp is neither ISO 8601 nor epoch seconds": 1,
        "wrong number of fields": 1,
    }
    assert describe_skipped(log.skipped).startswith("skipped 3 bad rows")


def test_every_row_bad_is_an_error_even_when_skipping(tmp_path):
    with pytest.raises(DataError, match="every row was rejected"):
        load_purchases(write(tmp_path, "customer_id,item_id,quantity\na,x,0\n"), on_bad_rows="skip")


def test_demo_store_loads(demo_files):
    log = load_purchases(demo_files["purchases"])
    assert len(log) == 8000 and len(log.customers) == 400
    assert np.all(log.weight >= 1)


def test_the_demo_store_and_a_catalog_name_every_item_distinctly(tmp_path):
    from recommender.catalog import load_catalog
    from recommender.demo import generate_store
    from recommender.vocabulary import IdVocabulary

    names = generate_store(customers=500, items=2000, purchases=3000, seed=42).catalog.column("name").to_pylist()
    assert len(set(names)) == len(names) and any(name.endswith(" No. 2") for name in names)
    (tmp_path / "catalog.csv").write_text("item_id,name\nA1,Mug\nB2,Mug\nC3,Plate\n")
    catalog = load_catalog(tmp_path / "catalog.csv", IdVocabulary(["A1", "B2", "C3"]))
    assert catalog.names.tolist() == ["Mug (A1)", "Mug (B2)", "Plate"]
