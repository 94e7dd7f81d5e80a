"""``--engine spark`` end to end in local[2] mode: train from files, export, serve, score."""

import numpy as np
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from recommender.algorithms.spark_als import SparkALS
from recommender.artifacts import load_model
from recommender.errors import DataError
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
        weighed = purchase_weights(read_purchases(local_spark, str(path), store_format=store), store_format=store)
        got = {(row["customer_id"], row["item_id"]): row["weight"] for row in weighed.frame.collect()}
        assert got == expected and weighed.skipped == {"no customer": 1}
    with_postage = tmp_path / "with-postage.csv"
    with_postage.write_text(RETAIL_CSV + POSTAGE_LINES)
    store = StoreFormat.from_dict({**store.to_dict(), "not_products": ["POST"]})
    weighed = purchase_weights(read_purchases(local_spark, str(with_postage), store_format=store), store_format=store)
    assert {(row["customer_id"], row["item_id"]): row["weight"] for row in weighed.frame.collect()} == expected
    assert weighed.skipped == load_purchases(with_postage, store_format=store).skipped == {"no customer": 2, "not a product": 1}
    # A customer of spaces alone (an export's padded blank field) is no customer either, in both engines.
    with_blank = tmp_path / "with-blank.csv"
    with_blank.write_text(RETAIL_CSV + "536390,22728,ALARM CLOCK BAKELIKE PINK,1,2010-12-06 11:00:00,3.75,   ,United Kingdom\n")
    weighed = purchase_weights(read_purchases(local_spark, str(with_blank), store_format=store), store_format=store)
    assert {(row["customer_id"], row["item_id"]): row["weight"] for row in weighed.frame.collect()} == expected
    assert weighed.skipped == load_purchases(with_blank, store_format=store).skipped == {"no customer": 2}


@pytest.mark.parametrize("weighting", [(2.0, "log"), (None, "once"), (0.5, "count"), (None, "count")])
def test_spark_weighs_history_as_the_file_loader_does(tmp_path, local_spark, weighting):
    """Recency from the newest event, returns netted against decayed purchases, repeats: the same cells."""
    from recommender.interactions import Interactions
    from recommender.spark_support import purchase_weights, read_purchases
    from recommender.store_format import StoreFormat, parse_columns
    from recommender.weights import HistoryWeighting
    from tests.test_store_data import COLUMNS, RETAIL_CSV

    path = tmp_path / "export.csv"
    path.write_text(RETAIL_CSV)
    store = StoreFormat(parse_columns(COLUMNS), returns="net", rows_without_customer="skip")
    weighting = HistoryWeighting(*weighting)
    local = Interactions.from_log(load_purchases(path, store_format=store), weighting)
    expected = {(local.customers.ids[r], local.items.ids[c]): v for r, c, v in zip(*sp.find(local.matrix))}
    weighed = purchase_weights(read_purchases(local_spark, str(path), store_format=store), store_format=store, weighting=weighting)
    got = {(row["customer_id"], row["item_id"]): row["weight"] for row in weighed.frame.collect()}
    assert weighed.newest == 1291629600  # 2010-12-06 10:00:00 UTC, the newest line
    assert got.keys() == expected.keys() and all(got[cell] == pytest.approx(expected[cell], rel=1e-6) for cell in got)
    if weighting.half_life_days == 2.0:  # 13047's two units 97 hours before the newest line, and one at it
        assert got[("13047", "85123A")] == pytest.approx(np.log2(1 + 2 * 0.5 ** (97 / 24 / 2) + 1))


TIMES = ["2025-03-01T10:00:00Z", "2025-03-01", " 2025-03-01 10:00 ", "2025-03-01 10:00:00+01:00", "2025-03-01T10:00:00.5",
         "2025-03-01T10:00:00+0100", "1700000000", "1700000000.7", "+1700000000", "-5", "2025", "2025-3-1", "2025-03",
         "12/1/2010 8:26", "", "abc", "2025-03-01T25:00:00", "1e9", "99999999999999"]


def test_spark_reads_times_by_the_file_loaders_rule(local_spark):
    from recommender.timestamps import parse_timestamp, spark_parse_timestamps

    frame = local_spark.createDataFrame([(text,) for text in TIMES], "t string")
    got = [row[0] for row in frame.select(spark_parse_timestamps(frame["t"], "string")).collect()]
    assert got == [parse_timestamp(text) for text in TIMES]
    assert got[:2] == [1740823200, 1740787200] and got[-1] is None  # ISO text is UTC; beyond the year 5138: no time


def test_spark_training_reads_a_store_export_from_the_command_line(tmp_path, capsys):
    """`train --engine spark` with the export's columns, catalog on its lines, --half-life and --repeats:
    the model's history, catalog and manifest as local training's."""
    from tests.test_store_data import COLUMNS, RETAIL_CSV, run

    data = tmp_path / "export.csv"
    data.write_text(RETAIL_CSV)
    options = ["--data", data, "--columns", COLUMNS + ",name=Description,price=UnitPrice", "--returns", "net",
               "--rows-without-customer", "skip", "--half-life", "2", "--repeats", "log"]
    code, out, err = run(capsys, "train", *options, "--engine", "spark", "--param", "factors=2", "--models-dir", tmp_path / "spark")
    assert code == 0 and "half-life 2 days, repeats log; skipped 1 row without a customer" in err
    spark = load_model(out.strip().splitlines()[-1])
    code, out, _ = run(capsys, "train", *options, "--algorithm", "item-knn", "--models-dir", tmp_path / "local")
    local = load_model(out.strip().splitlines()[-1])
    assert spark.manifest["history_weighting"] == local.manifest["history_weighting"] == {
        "half_life_days": 2.0, "repeats": "log", "newest_event": "2010-12-06T10:00:00Z"}
    assert spark.weighting == local.weighting
    assert "choice" not in spark.manifest and spark.algorithm.config.factors == 2  # settings given: nothing chosen
    for field in ("events", "skipped_rows", "store_format"):
        assert spark.manifest["data"][field] == local.manifest["data"][field]
    assert spark.manifest["data"]["catalog"] == local.manifest["data"]["catalog"] == str(data)  # names and prices from its lines
    assert spark.catalog.names[spark.items.index("85123A")] == "WHITE HANGING HEART T-LIGHT HOLDER"
    assert spark.catalog.prices[spark.items.index("85123A")] == local.catalog.prices[local.items.index("85123A")] == 2.95
    cells = lambda model: {(model.customers.ids[r], model.items.ids[c]): v for r, c, v in zip(*sp.find(model.history))}  # noqa: E731
    spark_cells, local_cells = cells(spark), cells(local)
    assert spark_cells.keys() == local_cells.keys() and all(spark_cells[k] == pytest.approx(local_cells[k], rel=1e-6) for k in spark_cells)
    # Served, a new purchase folds in as training would have: log2(1 + s + 1).
    row, _ = spark.history_row("13047", [("85123A", 1.0)])
    assert row[0, spark.items.index("85123A")] == pytest.approx(np.log2(2 * 0.5 ** (97 / 24 / 2) + 3), rel=1e-6)


def test_spark_training_reads_the_event_store_as_local_training_does(tmp_path, capsys):
    """`train --engine spark --events`: the API's events join the export's lines (weighed by
    type, their times in the recency), an erased customer leaves (their lines and events), and
    the manifest records what serving needs, as local training's."""
    from recommender.events import Event, EventStore
    from tests.test_store_data import COLUMNS, RETAIL_CSV, run

    data = tmp_path / "export.csv"
    data.write_text(RETAIL_CSV)
    events = tmp_path / "events.sqlite3"
    store = EventStore(events)
    day = 86_400
    newest = 1291629600 + 2 * day  # two days after the export's newest line
    store.add([
        Event("13047", "22728", timestamp=newest - day),  # a cell the export has
        Event("13047", "71053", "cart", timestamp=newest),  # half a purchase, and the newest event
        Event("13047", "85123A", "view", timestamp=newest - 3 * day),  # a tenth
        Event("new-customer", "85123A", quantity=2.0, timestamp=newest - day),
        Event("17850", "22728", timestamp=newest - day),  # erased below, events and lines alike
        Event("13047", "99999", "impression", timestamp=newest + day),  # weight 0: neither a cell nor the newest
    ])
    store.forget("17850")
    options = ["--data", data, "--columns", COLUMNS, "--returns", "net", "--rows-without-customer", "skip",
               "--half-life", "2", "--repeats", "log", "--events", events]
    code, out, err = run(capsys, "train", *options, "--engine", "spark", "--param", "factors=2", "--models-dir", tmp_path / "spark")
    assert code == 0, err
    spark = load_model(out.strip().splitlines()[-1])
    code, out, _ = run(capsys, "train", *options, "--algorithm", "item-knn", "--models-dir", tmp_path / "local")
    local = load_model(out.strip().splitlines()[-1])
    assert "17850" not in spark.customers and "new-customer" in spark.customers and "99999" not in spark.items
    assert spark.manifest["history_weighting"] == local.manifest["history_weighting"] == {
        "half_life_days": 2.0, "repeats": "log", "newest_event": "2010-12-08T10:00:00Z"}
    for field in ("events", "skipped_rows", "event_store", "event_weights", "events_through_id", "erasures_through",
                  "erased_customers_left_out"):
        assert spark.manifest["data"][field] == local.manifest["data"][field], field
    assert spark.manifest["data"]["events_through_id"] == 6 and spark.manifest["data"]["erased_customers_left_out"] == 1
    cells = lambda model: {(model.customers.ids[r], model.items.ids[c]): v for r, c, v in zip(*sp.find(model.history))}  # noqa: E731
    spark_cells, local_cells = cells(spark), cells(local)
    assert spark_cells.keys() == local_cells.keys() and all(spark_cells[k] == pytest.approx(local_cells[k], rel=1e-6) for k in spark_cells)
    # 22728: three on the export's line 4 days before the newest event, one a day before it.
    assert spark_cells[("13047", "22728")] == pytest.approx(np.log2(1 + 3 * 0.5 ** (4 / 2) + 0.5 ** (1 / 2)), rel=1e-6)
    assert spark_cells[("13047", "71053")] == pytest.approx(np.log2(1.5), rel=1e-6)


def test_spark_chooses_its_als_settings_on_validation_when_none_are_given(demo_files, tmp_path):
    """Every setting fitted by Spark and judged on a held-out fifth of a quarter of the
    customers' purchases; the best refitted on everything and recorded."""
    from training.spark_choice import SETTINGS
    from training.spark_jobs import train_with_spark

    path, model, _ = train_with_spark(str(demo_files["purchases"]), catalog_path=demo_files["catalog"], models_dir=tmp_path / "models",
                                      choose=True)
    choice = load_model(path).manifest["choice"]
    assert [t["params"] for t in choice["trials"]] == [dict(s) for s in SETTINGS] and {t["status"] for t in choice["trials"]} == {"done"}
    assert choice["validation"]["customers"] == 100  # 400 customers, a quarter of them, each with three purchases or more
    best = max(choice["trials"], key=lambda t: t["metrics"]["ndcg@20"])
    assert choice["params"] == best["params"] and choice["metric"] == "ndcg@20"
    assert len({t["metrics"]["ndcg@20"] for t in choice["trials"]}) > 1  # the settings do differ on this store
    defaults = SparkALS.Config()
    for name in ("factors", "regularization", "alpha", "iterations"):
        assert getattr(model.algorithm.config, name) == best["params"].get(name, getattr(defaults, name))


def test_spark_keeps_the_defaults_when_no_customer_has_purchases_to_hold_out():
    """Customers with two purchases each: nothing can be held out, so nothing is fitted to choose."""
    from training.spark_choice import choose_settings

    history = sp.csr_matrix(np.kron(np.eye(8, dtype=np.float32), np.ones((1, 2), dtype=np.float32)))
    choice = choose_settings(None, history)  # the job's DataFrame is not read: no fit runs
    assert choice.params == {} and choice.trials == [] and choice.validation["customers"] == 0
    assert choice.reason.startswith("the defaults: too few customers")


def test_spark_keeps_the_choices_budget_from_the_command_line(demo_files, tmp_path, capsys):
    """With --budget below one fit, only the defaults are fitted: the others are not started."""
    from tests.test_store_data import run

    code, out, err = run(capsys, "train", "--engine", "spark", "--data", demo_files["purchases"], "--budget", "0.001",
                         "--models-dir", tmp_path / "models")
    assert code == 0 and "chose spark-als the defaults: validation ndcg@20" in err and "the best of 1 fitted" in err
    choice = load_model(out.strip().splitlines()[-1]).manifest["choice"]
    assert [t["status"] for t in choice["trials"]] == ["done"] + ["skipped"] * 4 and choice["params"] == {}
    assert choice["trials"][1]["note"].startswith("the slowest fit so far took")


# Lines that make the most-common rule matter: a one-off name, a free sample, a new category.
CATALOG_LINES = """536390,85123A,HEART HOLDER (DAMAGED),1,2010-12-06 11:00:00,0,13047.0,United Kingdom
536391,71053,WHITE METAL LANTERN,2,2010-12-06 12:00:00,3.39,13047.0,United Kingdom
"""


def test_spark_takes_the_catalog_from_the_purchase_lines_as_the_file_loader_does(tmp_path, local_spark):
    from recommender.catalog import catalog_from_purchases as local_catalog
    from recommender.spark_support import catalog_from_purchases, read_purchases
    from recommender.vocabulary import IdVocabulary
    from tests.test_store_data import RETAIL, RETAIL_CSV

    csv_path = tmp_path / "export.csv"
    csv_path.write_text(RETAIL_CSV + CATALOG_LINES)
    parquet_path = tmp_path / "export.parquet"
    pq.write_table(pa_csv.read_csv(csv_path), parquet_path)  # UnitPrice a double column
    items = IdVocabulary(["22728", "71053", "85123A", "NEVER-SOLD"])
    expected = local_catalog(csv_path, items, RETAIL)
    # 2.55 and 2.95 on two lines each: the tie goes to the later line; a price of 0 is no price.
    assert expected.prices.tolist()[:3] == [3.75, 3.39, 2.95] and np.isnan(expected.prices[3])
    assert expected.names.tolist() == ["ALARM CLOCK BAKELIKE PINK", "WHITE METAL LANTERN", "WHITE HANGING HEART T-LIGHT HOLDER", "NEVER-SOLD"]
    for path in (csv_path, parquet_path):
        frame = read_purchases(local_spark, str(path), store_format=RETAIL, fields=("item_id", "name", "category", "price"))
        got = catalog_from_purchases(frame, items, path)
        assert got.names.tolist() == expected.names.tolist() and got.categories.tolist() == expected.categories.tolist()
        np.testing.assert_array_equal(got.prices, expected.prices)
    bad = tmp_path / "bad-price.csv"
    bad.write_text(RETAIL_CSV + "536392,71053,WHITE METAL LANTERN,1,2010-12-07 10:00:00,cheap,13047.0,United Kingdom\n")
    frame = read_purchases(local_spark, str(bad), store_format=RETAIL, fields=("item_id", "name", "category", "price"))
    with pytest.raises(DataError, match="1 lines have a price that is not a number"):
        catalog_from_purchases(frame, items, bad)


def test_spark_scoring_of_a_blend_with_a_history_weighting_is_local_scoring(split, tmp_path):
    """Any model folder scores the same through Spark: here a blend of two algorithms, trained
    on compressed repeats (both read by the executors from the folder, as the API reads them)."""
    from recommender.artifacts import save_model
    from recommender.weights import HistoryWeighting
    from training.spark_jobs import score_with_spark

    _, train_log, _, _, _ = split
    params = {"first": "als", "first_params": {"factors": 8, "iterations": 5}, "second": "item-knn", "second_params": {}, "weight": 0.4}
    model, _ = train_from_log(train_log, algorithm="blend", params=params, weighting=HistoryWeighting(None, "log"), top_lists=0)
    path = save_model(model, tmp_path / "models")
    listed = [str(c) for c in model.customers.ids[:300]] + ["never-seen"]
    score_with_spark(str(path), str(tmp_path / "spark.parquet"), n=5, customers=listed)
    score_all(load_model(path), tmp_path / "local.parquet", n=5, customers=listed, threads=1)
    columns = ["customer_id", "rank", "item_id", "source"]
    spark_rows = pq.read_table(tmp_path / "spark.parquet").select(columns).sort_by([(c, "ascending") for c in columns[:2]]).to_pylist()
    local_rows = pq.read_table(tmp_path / "local.parquet").select(columns).sort_by([(c, "ascending") for c in columns[:2]]).to_pylist()
    assert len(spark_rows) == 301 * 5 and spark_rows == local_rows
    assert load_model(path).manifest["algorithm"] == "blend"


def test_spark_refuses_a_half_life_without_event_times(tmp_path, local_spark):
    from recommender.spark_support import purchase_weights, read_purchases
    from recommender.weights import HistoryWeighting

    path = tmp_path / "untimed.csv"
    path.write_text("customer_id,item_id\nc1,a\nc2,b\n")
    with pytest.raises(DataError, match="a half-life needs event times: the purchase data has no timestamp column"):
        purchase_weights(read_purchases(local_spark, str(path)), weighting=HistoryWeighting(30.0))
    weighed = purchase_weights(read_purchases(local_spark, str(path)), weighting=HistoryWeighting(None, "once"))
    assert weighed.newest is None and weighed.events == 2
    assert sorted((r["customer_id"], r["item_id"], r["weight"]) for r in weighed.frame.collect()) == [("c1", "a", 1.0), ("c2", "b", 1.0)]
