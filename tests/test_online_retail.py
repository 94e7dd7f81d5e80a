"""A real shop's raw export (UCI Online Retail, ../shared/data/online-retail) trained end to end
through the command line, as README's "Training on a store's own export" tells a store owner to.

item-knn-bm25 keeps it to seconds; the reading of the file (mapping, float ids, returns, guest
rows, catalog) is the same whatever the algorithm.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from recommender.artifacts import load_model
from training.cli import main

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "online-retail" / "transactions.parquet"
FORMAT = ROOT / "examples" / "online-retail.json"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not DATA.is_file(), reason=f"{DATA} is absent (the UCI Online Retail log kept beside the project)"),
]


def test_the_online_retail_export_trains_and_recommends_named_products(tmp_path, capsys):
    assert main(["--quiet", "--threads", "2", "train", "--data", str(DATA), "--columns-file", str(FORMAT),
                 "--algorithm", "item-knn-bm25", "--models-dir", str(tmp_path / "models")]) == 0
    out, err = capsys.readouterr()
    model = load_model(out.strip().splitlines()[-1])
    data = model.manifest["data"]
    # 320,705 lines: 88,652 without a customer are skipped, and 1,145 of postage, fees and other
    # codes that are not products (examples/online-retail.json); 5,328 of the rest are returns (C invoices).
    assert data["skipped_rows"] == {"no customer": 88652, "not a product": 1145} and data["events"] == 230908 and data["returns"] == 5328
    assert (data["customers"], data["items"], data["interactions"]) == (3349, 3406, 161510)
    assert "skipped 88652 rows without a customer; skipped 1145 rows of codes that are not products" in err and "5328 returns netted out" in err
    assert not {"POST", "DOT", "M"} & set(model.items.ids)
    assert "17850" in model.customers and "17850.0" not in model.customers
    item = model.items.index("85123A")
    assert model.catalog.names[item] == "WHITE HANGING HEART T-LIGHT HOLDER" and model.catalog.prices[item] == 2.95
    assert not np.isnan(model.catalog.prices).any()  # every product sold has a positive price somewhere
    answer = model.recommend("17850", 5)
    assert answer.source == "personalised" and len(answer.items) == 5
    assert all(r.name != r.item_id and r.name.isupper() for r in answer.items)  # real product names, not codes


def test_the_online_retail_next_months_are_a_third_buying_again(tmp_path, capsys):
    assert main(["--quiet", "--threads", "2", "evaluate", "--data", str(DATA), "--columns-file", str(FORMAT),
                 "--algorithm", "item-knn-bm25", "--split", "time", "--cutoff", "2011-07-01", "--report", str(tmp_path)]) == 0
    assert "buy again: 31.9% of the test period's purchases" in capsys.readouterr().err
    repeats = json.loads((tmp_path / "report.json").read_text())["repeat_purchases"]
    assert (repeats["repeat_pairs"], repeats["test_pairs"]) == (14907, 46697)
    assert "<b>31.9%</b> of the test period's purchases" in (tmp_path / "report.html").read_text()
