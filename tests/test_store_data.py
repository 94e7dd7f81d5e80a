"""A store's export read as it is: its column names, float ids, returns, guest rows, its catalog."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recommender.catalog import catalog_from_purchases
from recommender.errors import DataError
from recommender.interactions import Interactions
from recommender.purchases import describe_skipped, load_purchases
from recommender.store_format import StoreFormat, parse_columns
from recommender.weights import HistoryWeighting

# The UCI Online Retail shape: float customer ids, a cancelled invoice (C...) returning 2 of 6,
# one returning more than was bought (8 of 6), a row without a customer, a missing description.
RETAIL_CSV = """InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom
536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom
536366,85123A,WHITE HANGING HEART T-LIGHT HOLDER,2,2010-12-02 09:00:00,2.95,13047.0,United Kingdom
C536379,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-2,2010-12-03 09:41:00,2.55,17850.0,United Kingdom
536380,22728,ALARM CLOCK BAKELIKE PINK,4,2010-12-03 10:00:00,3.75,,United Kingdom
536381,22728,,3,2010-12-04 10:00:00,3.75,13047.0,United Kingdom
C536382,71053,WHITE METAL LANTERN,-8,2010-12-05 10:00:00,3.39,17850.0,United Kingdom
536383,85123A,WHITE HANGING HEART T-LIGHT HOLDER,1,2010-12-06 10:00:00,2.95,13047.0,United Kingdom
"""
COLUMNS = "customer_id=CustomerID,item_id=StockCode,timestamp=InvoiceDate,quantity=Quantity"
RETAIL = StoreFormat(parse_columns(COLUMNS + ",name=Description,price=UnitPrice"), returns="net", rows_without_customer="skip")


def write(tmp_path, text, name="export.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def cells(log, weighting=None) -> dict[tuple[str, str], float]:
    matrix = Interactions.from_log(log, weighting).matrix.tocoo()
    return {(log.customers.ids[r], log.items.ids[c]): float(v) for r, c, v in zip(matrix.row, matrix.col, matrix.data)}


def test_a_retail_export_loads_as_it_is_with_exact_weights_and_counts(tmp_path):
    log = load_purchases(write(tmp_path, RETAIL_CSV), store_format=RETAIL)
    assert sorted(log.customers.ids.tolist()) == ["13047", "17850"]  # 17850.0 read as 17850
    assert log.skipped == {"no customer": 1} and len(log) == 7 and log.returns == 2
    assert log.notes == ["CustomerID: ids stored as floating-point numbers (17850.0) read as whole numbers (17850)"]
    assert cells(log) == {
        ("17850", "85123A"): 4.0,  # bought 6, returned 2
        ("13047", "85123A"): 3.0,  # 2 + 1
        ("13047", "22728"): 3.0,  # the line without a description still counts
    }  # 17850 returned 8 lanterns of 6: nothing left, no interaction
    assert describe_skipped(log.skipped) == "skipped 1 row without a customer"


# Invoice lines that are no product: postage for a customer, and for a guest.
POSTAGE_LINES = """536384,POST,POSTAGE,1,2010-12-06 10:00:00,18.00,13047.0,France
536385,POST,POSTAGE,1,2010-12-06 11:00:00,18.00,,France
"""


def test_codes_that_are_not_products_are_neither_learned_nor_recommended(tmp_path):
    path = write(tmp_path, RETAIL_CSV + POSTAGE_LINES)
    assert ("13047", "POST") in cells(load_purchases(path, store_format=RETAIL))  # without the rule, postage is a product
    store = StoreFormat.from_dict({**RETAIL.to_dict(), "not_products": ["POST", "M", "D"]})
    log = load_purchases(path, store_format=store)
    assert "POST" not in log.items.ids and cells(log) == {("17850", "85123A"): 4.0, ("13047", "85123A"): 3.0, ("13047", "22728"): 3.0}
    assert log.skipped == {"no customer": 2, "not a product": 1}  # the guest's postage counts as a guest row
    assert describe_skipped(log.skipped) == "skipped 2 rows without a customer; skipped 1 row of codes that are not products"
    for wrong in ("POST", [""], [3]):
        with pytest.raises(ValueError, match="not_products must be a list of item codes"):
            StoreFormat.from_dict({"not_products": wrong}) if wrong != "POST" else StoreFormat(not_products=wrong)


def test_the_catalog_comes_from_the_same_file(tmp_path):
    path = write(tmp_path, RETAIL_CSV)
    log = load_purchases(path, store_format=RETAIL)
    catalog = catalog_from_purchases(path, log.items, RETAIL)
    by_id = {item: (name, price) for item, name, price in zip(log.items.ids, catalog.names, catalog.prices)}
    # 2.55 and 2.95 on two lines each: the tie goes to the later line.
    assert by_id["85123A"] == ("WHITE HANGING HEART T-LIGHT HOLDER", 2.95)
    # Named only on the line without a customer, which still names the product.
    assert by_id["22728"] == ("ALARM CLOCK BAKELIKE PINK", 3.75)
    assert by_id["71053"] == ("WHITE METAL LANTERN", 3.39)


def test_a_columns_file_and_command_line_options_make_one_format(tmp_path):
    path = write(tmp_path, '{"columns": {"customer_id": "CustomerID"}, "returns": "net"}', "store.json")
    store = StoreFormat.read(path).with_options(columns={"item_id": "StockCode"}, rows_without_customer="skip")
    assert store.to_dict() == {
        "columns": {"customer_id": "CustomerID", "item_id": "StockCode"}, "returns": "net", "rows_without_customer": "skip",
        "not_products": [],
    }
    for text, message in [
        ('{"columns": {"customer": "CustomerID"}}', "unknown field 'customer'"),
        ('{"columns": {"customer_id": "A", "item_id": "A"}}', "'A' is mapped to more than one field"),
        ('{"returns": "refund"}', "returns must be one of error, net"),
        ('{"colums": {}}', "unknown key 'colums'"),
        ("[1]", "must be a JSON object"),
    ]:
        with pytest.raises(ValueError, match=message):
            StoreFormat.read(write(tmp_path, text, "bad.json"))
    with pytest.raises(ValueError, match="must look like FIELD=COLUMN"):
        parse_columns("customer_id")


@pytest.mark.parametrize(
    "store, line, column, message",
    [
        # Without --returns net a return is still an error, naming the file's own column.
        (StoreFormat(parse_columns(COLUMNS), rows_without_customer="skip"), 5, "Quantity", "must be a positive number.*--returns net"),
        # Without skipping guest rows, the row with no customer stops the run.
        (StoreFormat(parse_columns(COLUMNS), returns="net"), 6, "CustomerID", "is empty"),
        (StoreFormat(parse_columns(COLUMNS.replace("InvoiceDate", "Date")), returns="net"), 1, "Date", "named by the column mapping is missing"),
    ],
)
def test_errors_name_the_line_and_the_files_own_column(tmp_path, store, line, column, message):
    path = write(tmp_path, RETAIL_CSV)
    with pytest.raises(DataError, match=message) as caught:
        load_purchases(path, store_format=store)
    assert (caught.value.line, caught.value.column) == (line, column)


def test_a_plain_file_keeps_its_strictness_about_negative_quantities(tmp_path):
    path = write(tmp_path, "customer_id,item_id,quantity\na,x,2\na,x,-1\n")
    with pytest.raises(DataError, match="line 3, column 'quantity': must be a positive number"):
        load_purchases(path)
    assert cells(load_purchases(path, store_format=StoreFormat(returns="net"))) == {("a", "x"): 1.0}
    with pytest.raises(DataError, match="must be a non-zero number"):
        load_purchases(write(tmp_path, "customer_id,item_id,quantity\na,x,0\n"), store_format=StoreFormat(returns="net"))


def test_float_ids_become_whole_numbers_and_real_string_ids_stay_verbatim(tmp_path):
    floats = load_purchases(write(tmp_path, "customer_id,item_id\n17850.0,1.00\n12.0,2.0\n"))
    assert floats.customers.ids.tolist() == ["17850", "12"] and floats.items.ids.tolist() == ["1", "2"]
    # One value without ".0" shows the column holds text ids: nothing is rewritten.
    mixed = load_purchases(write(tmp_path, "customer_id,item_id\n007,A-1.0\n17850.0,2.0\n"))
    assert mixed.customers.ids.tolist() == ["007", "17850.0"] and mixed.items.ids.tolist() == ["A-1.0", "2.0"]
    assert floats.notes and not mixed.notes


def test_parquet_float_ids_missing_ones_and_ones_that_are_not_whole(tmp_path):
    table = pa.table({"CustomerID": [17850.0, None, float("nan"), 12.0], "StockCode": ["a", "b", "c", "d"]})
    pq.write_table(table, tmp_path / "t.parquet")
    store = StoreFormat({"customer_id": "CustomerID", "item_id": "StockCode"}, rows_without_customer="skip")
    log = load_purchases(tmp_path / "t.parquet", store_format=store)
    assert log.customers.ids.tolist() == ["17850", "12"] and log.skipped == {"no customer": 2}
    pq.write_table(pa.table({"CustomerID": [17850.0, 17850.5], "StockCode": ["a", "b"]}), tmp_path / "bad.parquet")
    with pytest.raises(DataError, match="row 2, column 'CustomerID': is not a whole number") as caught:
        load_purchases(tmp_path / "bad.parquet", store_format=store)  # never dropped as a guest row
    assert caught.value.line == 2


def test_a_catalog_file_carries_prices(tmp_path):
    from recommender.catalog import load_catalog
    from recommender.vocabulary import IdVocabulary

    path = write(tmp_path, "item_id,name,price\nA1,Mug,4.5\nB2,Plate,\n", "catalog.csv")
    catalog = load_catalog(path, IdVocabulary(["A1", "B2", "C3"]))
    assert catalog.prices[0] == 4.5 and np.isnan(catalog.prices[1:]).all()
    with pytest.raises(DataError, match="line 2, column 'price': is not a number"):
        load_catalog(write(tmp_path, "item_id,price\nA1,cheap\n", "bad.csv"), IdVocabulary(["A1"]))


def test_an_item_on_several_catalog_lines_takes_its_last_and_is_noted(tmp_path):
    from recommender.catalog import load_catalog
    from recommender.vocabulary import IdVocabulary

    path = write(tmp_path, "item_id,name,price\nA1,Mug,4.5\nB2,Plate,3\nZ9,Unsold,1\nA1,Mug (new glaze),5\nZ9,Unsold,2\nA1,Mug,5.5\n", "catalog.csv")
    notes: list[str] = []
    catalog = load_catalog(path, IdVocabulary(["A1", "B2", "C3"]), notes=notes)
    assert catalog.names.tolist() == ["Mug", "Plate", "C3"] and catalog.prices[:2].tolist() == [5.5, 3.0]
    # Z9 is listed twice too, but the model does not know it: nothing to say about it.
    assert notes == [f"{path}: 1 item(s) listed on more than one line, such as the item of lines 2, 5, 7; each item's last line is used"]
    once: list[str] = []
    load_catalog(write(tmp_path, "item_id,name\nA1,Mug\nB2,Plate\n", "plain.csv"), IdVocabulary(["A1", "B2"]), notes=once)
    assert once == []


def run(capsys, *args) -> tuple[int, str, str]:
    """The ``recommender`` command in this process: (exit code, stdout, stderr)."""
    from training.cli import main

    code = main(["--quiet", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_on_an_export_with_its_own_columns_from_the_command_line(tmp_path, capsys):
    import json

    from recommender.artifacts import load_model

    data = write(tmp_path, RETAIL_CSV)
    code, out, err = run(
        capsys, "train", "--data", data, "--columns", COLUMNS + ",name=Description,price=UnitPrice", "--returns", "net",
        "--rows-without-customer", "skip", "--half-life", "2", "--repeats", "log", "--algorithm", "item-knn",
        "--models-dir", tmp_path / "models",
    )
    assert code == 0 and "half-life 2 days, repeats log, 2 returns netted out; skipped 1 row without a customer" in err
    assert "note: CustomerID: ids stored as floating-point numbers" in err
    model = load_model(out.strip().splitlines()[-1])
    assert model.manifest["history_weighting"] == {"half_life_days": 2.0, "repeats": "log", "newest_event": "2010-12-06T10:00:00Z"}
    assert model.manifest["data"]["store_format"]["columns"]["price"] == "UnitPrice"
    # 13047 bought 2 of 85123A 4 days 1 hour before the newest event, and 1 at it: log2(1 + 2 x 0.5 ** (97/24 / 2) + 1).
    row = model.history[model.customers.index("13047")]
    history = dict(zip(model.items.ids[row.indices].tolist(), row.data.tolist()))
    assert history["85123A"] == pytest.approx(np.log2(1 + 2 * 0.5 ** (97 / 24 / 2) + 1), rel=1e-6)
    # Loaded, the model folds a new purchase in as training would have: log2(1 + s + 1).
    assert model.weighting == HistoryWeighting(2.0, "log")
    row, _ = model.history_row("13047", [("85123A", 1.0)])
    assert row[0, model.items.index("85123A")] == pytest.approx(np.log2(2 * 0.5 ** (97 / 24 / 2) + 3), rel=1e-6)
    assert model.catalog.prices[model.items.index("85123A")] == 2.95
    store = write(tmp_path, json.dumps({"columns": {"customer_id": "CustomerID", "item_id": "StockCode"}}), "store.json")
    code, _, err = run(capsys, "train", "--data", data, "--columns-file", store, "--models-dir", tmp_path / "m2")
    assert code == 1 and "export.csv, line 6, column 'CustomerID': is empty" in err  # guest rows: skipped only when asked


@pytest.mark.parametrize(
    "options, message",
    [
        (["--columns", "customer=CustomerID"], "unknown field 'customer'"),
        (["--half-life", "-3"], "half_life_days must be a positive"),
        (["--half-life", "soon"], "must be a number of days or 'none'"),
        (["--columns-file", "missing.json"], "missing.json does not exist"),
        (["--engine", "spark", "--algorithm", "als"], "--engine spark trains Spark MLlib ALS (spark-als), not als"),
        (["--engine", "spark", "--events", "absent.sqlite3"], "--events absent.sqlite3 does not exist"),  # before Spark starts
        (["--events", "mysql://db/events"], "not an event store; give a path, sqlite:///path or postgresql://"),
        (["--events", "absent.sqlite3"], "--events absent.sqlite3 does not exist"),
    ],
)
def test_store_format_and_weighting_mistakes_are_usage_errors(tmp_path, capsys, options, message):
    code, _, err = run(capsys, "train", "--data", write(tmp_path, RETAIL_CSV), *options, "--models-dir", tmp_path / "models")
    assert code == 2 and message in err and err.count("\n") == 1


def test_evaluate_and_tune_take_the_bad_row_rule_their_errors_point_to(tmp_path, capsys):
    """The error says "use --on-bad-rows skip", which only train had; and a --cutoff without
    --split time was ignored under the random split (and recorded as if used)."""
    import json

    rng = np.random.default_rng(0)
    rows = [f"c{c},i{rng.integers(0, 12)},2025-0{1 + k % 6}-1{k % 9}T10:00:00Z,1" for c in range(30) for k in range(8)]
    data = write(tmp_path, "customer_id,item_id,timestamp,quantity\n" + "\n".join(rows[:100] + ["c1,i2,2025-02-02T00:00:00Z,lots"] + rows[100:]) + "\n")
    code, _, err = run(capsys, "evaluate", "--data", data, "--algorithm", "popular", "--report", tmp_path / "r0")
    assert code == 1 and "line 102, column 'quantity': is not a number" in err and "--on-bad-rows skip" in err
    code, _, err = run(capsys, "evaluate", "--data", data, "--algorithm", "popular", "--on-bad-rows", "skip", "--cutoff", "2025-05-01", "--report", tmp_path / "r1")
    assert code == 0 and "skipped 1 bad row" in err, err
    assert json.loads((tmp_path / "r1" / "report.json").read_text())["settings"]["split"]["kind"] == "time"
    code, _, err = run(capsys, "evaluate", "--data", data, "--algorithm", "popular", "--on-bad-rows", "skip", "--split", "random", "--cutoff", "2025-05-01", "--report", tmp_path / "r2")
    assert code == 2 and "--cutoff is the time split's; --split random does not use it" in err
    code, _, err = run(capsys, "tune", "--data", data, "--algorithm", "item-knn", "--trials", "1", "--on-bad-rows", "skip", "--out", tmp_path / "t.json")
    assert code == 0 and "skipped 1 bad row" in err, err


def test_a_row_without_a_customer_points_to_the_guest_rule(tmp_path):
    data = write(tmp_path, "customer_id,item_id\nc1,i1\n,i2\n")
    with pytest.raises(DataError, match="line 3, column 'customer_id': is empty .*--rows-without-customer skip"):
        load_purchases(data)


def test_a_category_asked_of_a_model_without_categories_says_how_to_give_them():
    # A catalog taken from the purchase lines has names and prices but no categories: "trained
    # without a catalog" was untrue advice there.
    from recommender.catalog import Catalog
    from recommender.errors import UnknownCategoryError
    from recommender.vocabulary import IdVocabulary

    with pytest.raises(UnknownCategoryError, match="known categories: none .*--catalog file with a category column.*--columns category=COLUMN"):
        Catalog.empty(IdVocabulary(["A1"])).check_category("Kitchen")


@pytest.mark.parametrize("separator, shown", [(";", "';'"), ("\t", "tabs")])
def test_a_file_separated_by_another_character_is_named_as_such_at_its_header(tmp_path, separator, shown):
    # It used to fail at the first line whose text held a comma, with "use --on-bad-rows skip".
    lines = ["customer_id;item_id;name".replace(";", separator)] + [f"c{k};i{k};Mug".replace(";", separator) for k in range(120)] + ["c1;i2;Mug, blue".replace(";", separator)]
    data = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(DataError, match=f"line 1: the header is one field holding {shown}: the file separates its fields with {shown}"):
        load_purchases(data)
