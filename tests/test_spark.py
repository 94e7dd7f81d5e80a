"""``--engine spark`` end to end in local[2] mode: train from files, export, serve, score."""

import numpy as np
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from recommender.artifacts import load_model
from recommender.evaluation import evaluate, random_split, split_matrices
from recommender.purchases import load_purchases
from training.batch import score_all
from training.pipeline import train_from_log

pytest.importorskip("pyspark", reason="pyspark is not installed: pip install '.[spark]' (make test installs it)")
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("local_spark")]

# The same hyper-parameters for both; Spark scales λ by each row's count (ALS-WR).
PARAMS = {"factors": 16, "regularization": 0.05, "alpha": 5.0, "iterations": 10}


@pytest.fixture(scope="module")
def split(demo_files, tmp_path_factory):
    """A seeded 80/20 split of the demo store; train written as CSV for Spark to read."""
    log = load_purchases(demo_files["purchases"])
    train_log, test_log = random_split(log, 0.2, seed=3)
    folder = tmp_path_factory.mktemp("spark")
    train_csv = folder / "train.csv"
    table = {"customer_id": log.customers.ids[train_log.customer_index], "item_id": log.items.ids[train_log.item_index],
             "quantity": train_log.weight.astype(np.float64)}
    import pyarrow as pa

    pa_csv.write_csv(pa.table(table), train_csv)
    return log, train_log, test_log, train_csv, folder


@pytest.fixture(scope="module")
def spark_model(split, demo_files):
    from training.spark_jobs import train_with_spark

    _, _, _, train_csv, folder = split
    path, _, _ = train_with_spark(str(train_csv), params=PARAMS, catalog_path=demo_files["catalog"], models_dir=folder / "models")
    return path


def _test_matrix(model, log, test_log) -> sp.csr_matrix:
    """The held-out purchases against the model's own vocabularies."""
    rows = model.customers.lookup(log.customers.ids[test_log.customer_index])
    cols = model.items.lookup(log.items.ids[test_log.item_index])
    keep = (rows >= 0) & (cols >= 0)
    matrix = sp.csr_matrix((np.ones(keep.sum(), np.float32), (rows[keep], cols[keep])), shape=model.history.shape)
    matrix.data[:] = 1.0
    return matrix


def test_spark_model_loads_and_serves_through_model(spark_model):
    model = load_model(spark_model)
    assert model.algorithm.name == "spark-als" and model.manifest["engine"]["name"] == "spark"
    customer = str(model.customers.ids[0])
    result = model.recommend(customer, 5)
    assert result.source == "personalised" and len(result.items) == 5
    assert not set(model.purchased(customer)) & {r.item_id for r in result.items}
    assert result.items[0].reason.startswith("because you bought")
    # An unknown customer with one new purchase is folded in, never an error.
    folded = model.recommend("new-customer", 3, new_events=[(str(model.items.ids[0]), 1.0)])
    assert folded.source == "personalised" and len(folded.items) == 3


def test_spark_accuracy_is_within_ten_percent_of_implicit_als(spark_model, split):
    log, train_log, test_log, _, _ = split
    spark = load_model(spark_model)
    spark_metrics = evaluate(spark.algorithm, spark.history, _test_matrix(spark, log, test_log), ks=(20,))
    als, _ = train_from_log(train_log, algorithm="als", params=PARAMS)
    train, test = split_matrices(train_log, test_log)
    als_metrics = evaluate(als.algorithm, train, test, ks=(20,))
    for metric in ("recall@20", "ndcg@20"):
        assert spark_metrics[metric] >= 0.9 * als_metrics[metric], (metric, spark_metrics[metric], als_metrics[metric])


def test_spark_scoring_writes_the_same_top_n_as_local_scoring(spark_model, tmp_path):
    from training.spark_jobs import score_with_spark

    model = load_model(spark_model)
    manifest = score_with_spark(spark_model, str(tmp_path / "spark.parquet"), n=5)
    score_all(model, tmp_path / "local.parquet", n=5, threads=1)
    columns = ["customer_id", "rank", "item_id"]
    spark_rows = pq.read_table(tmp_path / "spark.parquet").select(columns).sort_by([(c, "ascending") for c in columns[:2]])
    local_rows = pq.read_table(tmp_path / "local.parquet").select(columns).sort_by([(c, "ascending") for c in columns[:2]])
    assert manifest["rows"] == len(model.customers) * 5
    assert spark_rows.to_pylist() == local_rows.to_pylist()


def test_spark_scoring_gives_unknown_customers_popular_items_like_local_scoring(spark_model, tmp_path):
    from training.spark_jobs import score_with_spark

    model = load_model(spark_model)
    listed = [str(model.customers.ids[3]), "never-seen", str(model.customers.ids[0]), "also-new"]
    manifest = score_with_spark(spark_model, str(tmp_path / "spark.parquet"), n=4, customers=listed)
    score_all(model, tmp_path / "local.parquet", n=4, customers=listed, threads=1)
    columns = ["customer_id", "rank", "item_id", "source"]
    spark_rows = pq.read_table(tmp_path / "spark.parquet").select(columns).sort_by([(c, "ascending") for c in columns[:2]]).to_pylist()
    local_rows = pq.read_table(tmp_path / "local.parquet").select(columns).sort_by([(c, "ascending") for c in columns[:2]]).to_pylist()
    assert manifest["customers_unknown_to_model"] == 2 and spark_rows == local_rows
    popular = [r.item_id for r in model.recommend("never-seen", 4).items]
    assert [r["item_id"] for r in spark_rows if r["customer_id"] == "never-seen"] == popular
    assert {r["source"] for r in spark_rows if r["customer_id"] in ("never-seen", "also-new")} == {"popular"}


def test_spark_training_applies_the_id_rules_of_the_file_loader(tmp_path):
    from recommender.errors import DataError
    from training.spark_jobs import train_with_spark

    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,item_id\nc1,a\nc\x01ontrol,b\nc2," + "x" * 300 + "\nc2,a\nc3,b\n")
    with pytest.raises(DataError, match="2 rows have an invalid id"):
        train_with_spark(str(bad), params=PARAMS, models_dir=tmp_path / "models")


def test_spark_reads_a_store_export_as_the_file_loader_does(tmp_path, local_spark):
    """Own column names, float ids (text in CSV, double in Parquet), returns netted, guest rows skipped."""
    from recommender.interactions import Interactions
    from recommender.spark_support import purchase_weights, read_purchases
    from recommender.store_format import StoreFormat, parse_columns
    from tests.test_store_data import COLUMNS, POSTAGE_LINES, RETAIL_CSV

    csv_path = tmp_path / "export.csv"
    csv_path.write_text(RETAIL_CSV)
    parquet_path = tmp_path / "export.parquet"
    pq.write_table(pa_csv.read_csv(csv_path), parquet_path)  # CustomerID inferred as double, as in the UCI file
    store = StoreFormat(parse_columns(COLUMNS), returns="net", rows_without_customer="skip")
    local = Interactions.from_log(load_purchases(csv_path, store_format=store))
    expected = {(local.customers.ids[r], local.items.ids[c]): v for r, c, v in zip(*sp.find(local.matrix))}
    assert expected == {("17850", "85123A"): 4.0, ("13047", "85123A"): 3.0, ("13047", "22728"): 3.0}
    for path in (csv_path, parquet_path):
        weights, skipped = purchase_weights(read_purchases(local_spark, str(path), store_format=store), store_format=store)
        got = {(row["customer_id"], row["item_id"]): row["weight"] for row in weights.collect()}
        assert got == expected and skipped == {"no customer": 1}
    with_postage = tmp_path / "with-postage.csv"
    with_postage.write_text(RETAIL_CSV + POSTAGE_LINES)
    store = StoreFormat.from_dict({**store.to_dict(), "not_products": ["POST"]})
    weights, skipped = purchase_weights(read_purchases(local_spark, str(with_postage), store_format=store), store_format=store)
    assert {(row["customer_id"], row["item_id"]): row["weight"] for row in weights.collect()} == expected
    assert skipped == load_purchases(with_postage, store_format=store).skipped == {"no customer": 2, "not a product": 1}
