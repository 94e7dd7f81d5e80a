"""``recommender forget`` and ``recommender experiments report`` end to end: the store, the
next training's vocabulary, rewritten model folders, and the report page."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from recommender.artifacts import load_model, save_model
from recommender.events import AnswerRecord, Event, EventStore
from recommender.forgetting import without_customers
from tests.conftest import write_two_group_store
from training.cli import main
from training.pipeline import train


@pytest.fixture(params=("sqlite", "postgresql"))
def events_location(request, tmp_path) -> str:
    """The API's event store as ``--events`` names it: a SQLite file, or a PostgreSQL URL."""
    return str(tmp_path / "events.sqlite3") if request.param == "sqlite" else request.getfixturevalue("postgres_url")


def test_forget_erases_the_store_then_training_then_published_models(tmp_path, models_dir, capsys, events_location):
    events = events_location
    store = EventStore(events)
    store.add([Event("c0", "a4"), Event("c1", "a4"), Event("newcomer", "b2")])
    store.add_answers([AnswerRecord("r1", "c0", "recommendations", None, None, "v", ("a3",), 1)])
    original = (models_dir / "current").resolve()
    assert main(["forget", "c0", "--events", str(events), "--models-dir", str(models_dir)]) == 0
    message = capsys.readouterr().err
    assert "1 stored events and 1 logged answers deleted" in message and f"still in published models {original.name}" in message
    assert store.for_customer("c0") == [] and [e.customer_id for e in store.for_customer("c1")] == ["c1"]

    purchases, _ = write_two_group_store(tmp_path / "data")  # the files still list c0
    retrained = train(purchases, algorithm="item-knn", models_dir=models_dir, events_path=events).model
    assert "c0" not in retrained.customers and "c1" in retrained.customers and "newcomer" in retrained.customers
    assert retrained.manifest["data"]["erasures_through"] == 1 and retrained.manifest["data"]["erased_customers_left_out"] == 1

    before = load_model(original).recommend("c1", 3)
    assert main(["forget", "d1", "--events", str(events), "--models-dir", str(models_dir), "--rewrite-models"]) == 0
    message = capsys.readouterr().err
    assert f"rewrote {original.name}: 2 erased customers removed" in message  # c0 and d1
    assert f"rewrote {retrained.version}: 1 erased customers removed" in message  # d1 only: c0 was never learned
    rewritten = load_model(models_dir / "current")  # checksums verified; the same version name, still current
    assert rewritten.version == original.name and (models_dir / "current").resolve() == original
    assert "c0" not in rewritten.customers and "d1" not in rewritten.customers and len(rewritten.customers) == 10
    assert rewritten.top_lists is None or rewritten.top_lists.items.shape[0] == 10
    assert rewritten.manifest["data"]["erasures_through"] == 2 and rewritten.manifest["rewritten"][-1]["customers_removed"] == 2
    assert rewritten.recommend("c1", 3).items == before.items  # everyone else answered as before
    assert not list(models_dir.glob(".*"))  # no staging or retired folder left behind
    store.close()  # PostgreSQL's pool, closed here rather than by the garbage collector


@pytest.mark.parametrize("algorithm", ["als", "graph-filter"])
def test_rewriting_drops_per_customer_state_and_keeps_the_others_answers(tmp_path, algorithm):
    purchases, _ = write_two_group_store(tmp_path / "data")
    model = train(purchases, algorithm=algorithm, models_dir=tmp_path / "models").model
    keep = np.array([customer not in ("c0", "d3") for customer in model.customers.ids.tolist()])
    expected = {c: [r.item_id for r in model.recommend(c, 3).items] for c in ("c1", "d0")}
    forgotten = without_customers(model, keep)
    path = save_model(forgotten, tmp_path / "rewritten", version="same")
    reloaded = load_model(path)
    assert "c0" not in reloaded.customers and len(reloaded.customers) == 10
    assert {c: [r.item_id for r in reloaded.recommend(c, 3).items] for c in ("c1", "d0")} == expected
    assert reloaded.recommend("c0", 3).source == "popular"


def test_forget_refuses_a_missing_store_and_a_bad_id(tmp_path, capsys):
    assert main(["forget", "c0", "--events", str(tmp_path / "missing.sqlite3")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "events.sqlite3").touch()
    assert main(["forget", "a\tb", "--events", str(tmp_path / "events.sqlite3")]) == 2


@pytest.mark.slow
def test_a_database_that_refuses_the_role_is_one_error_line_naming_why(postgres_cluster):
    """The pool only logs why it cannot connect (three warnings, the cause among them); the
    command says it once: the server's own words in its error line, and nothing else."""
    import subprocess
    import sys

    url = f"postgresql://nouser@127.0.0.1:{postgres_cluster.port}/nodb"
    result = subprocess.run([sys.executable, "-m", "training", "forget", "c0", "--events", url], capture_output=True, text=True)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("recommender forget: error: event store") and 'role "nouser" does not exist' in lines[0]


def test_a_report_priced_by_a_model_that_served_none_of_the_answers_says_so(tmp_path, capsys, models_dir):
    """An operator's report took models/current's catalog (another store's): revenue read 0.00, unexplained."""
    events = tmp_path / "events.sqlite3"
    EventStore(events).add_answers([AnswerRecord("r1", "c1", "recommendations", "homepage", "default", "v-elsewhere", ("a",), 1_700_000_000)])
    out = tmp_path / "report.html"
    assert main(["experiments", "report", "--events", str(events), "--out", str(out), "--model", str(models_dir / "current")]) == 0
    err = capsys.readouterr().err
    assert "warning: revenue is priced from model " in err and "which served none of the experiments' answers (served by v-elsewhere)" in err


def test_experiments_report_is_a_page_with_the_verdict_and_plots(tmp_path, capsys):
    events = tmp_path / "events.sqlite3"
    store = EventStore(events)
    answers, feedback = [], []
    rng = np.random.default_rng(3)
    for k in range(400):
        variant = "control" if k % 2 else "default"
        rid, at = f"r{k}", 1_700_000_000 + 60 * k
        answers.append(AnswerRecord(rid, f"c{k}", "recommendations", "homepage", variant, "v-" + variant, ("a", "b"), at))
        feedback += [Event(f"c{k}", item, "impression", 1, at + 1, rid) for item in ("a", "b")]
        if rng.random() < (0.1 if variant == "control" else 0.4):
            feedback.append(Event(f"c{k}", "a", "click", 1, at + 2, rid))
    store.add_answers(answers)
    store.add(feedback)
    out = tmp_path / "report" / "report.html"
    assert main(["experiments", "report", "--events", str(events), "--out", str(out), "--points", "8"]) == 0
    page = out.read_text()
    assert "homepage" in page and "default is leading" in page and page.count("<img") == 3
    assert "delta method" in page and "<td>control</td>" in page and "No plots over time yet" not in page
    # The table's difference column gives the verdict's figure, on the variant's row; the control's cell is empty.
    lead = re.search(r"its click-through rate is ([+-]\d+\.\d\d) points against control \(95% interval ([+-]\d+\.\d\d) to ([+-]\d+\.\d\d)", page)
    assert lead and float(lead[1]) > 0, page
    assert "<th>click-through rate against control</th>" in page
    assert re.search(rf"<tr><td>default</td>.*<td>{re.escape(lead[1])} points <span class='small'>\({re.escape(lead[2])} to {re.escape(lead[3])}; p &lt; 0.001\)", page)
    control_row = re.search(r"<tr><td>control</td>.*?</tr>", page)[0]
    assert re.findall(r"<td>(.*?)</td>", control_row)[9] == "–"  # the tenth column: the difference
    assert capsys.readouterr().out.strip() == str(out)
    # Every answer at one moment: no series to plot, and the page says why rather than leaving the plots out unexplained.
    instant = EventStore(tmp_path / "instant.sqlite3")
    instant.add_answers([a._replace(served_at=1_700_000_000) for a in answers])
    instant.add([dataclasses.replace(e, timestamp=1_700_000_001) for e in feedback])
    out = tmp_path / "instant" / "report.html"
    assert main(["experiments", "report", "--events", str(tmp_path / "instant.sqlite3"), "--out", str(out), "--points", "8"]) == 0
    page = out.read_text()
    assert page.count("<img") == 0 and "No plots over time yet: they need answers served at two moments or more" in page
    # A model given that is not there, and fewer than two points, are said, not passed over.
    assert main(["experiments", "report", "--events", str(events), "--out", str(out), "--model", str(tmp_path / "nope")]) == 2
    assert "--model" in capsys.readouterr().err
    assert main(["experiments", "report", "--events", str(events), "--out", str(out), "--points", "0"]) == 2
    assert "--points must be at least 2" in capsys.readouterr().err


def test_training_keeps_which_stored_events_were_only_views(tmp_path, events_location):
    store = EventStore(events_location)
    store.add([Event("browser", "b0", "view"), Event("browser", "b1"), Event("c1", "a4", "view")])
    purchases, catalog = write_two_group_store(tmp_path / "data")
    models_dir = tmp_path / "models"
    model = train(purchases, catalog_path=catalog, algorithm="item-knn", models_dir=models_dir, events_path=events_location, promote=True).model
    assert model.top_lists is not None and model.top_lists.reasons is not None

    def reasons(loaded) -> list[str]:
        return [item.reason for item in loaded.recommend("browser", 3).items]

    loaded = load_model(models_dir / "current")
    assert [loaded.items.ids[i] for i in loaded.viewed_in_training(loaded.customers.get("browser"))] == ["b0"]  # what /history marks
    served = reasons(loaded)  # from the top lists, as the server answers
    assert any("viewed Whisk b0" in reason for reason in served), served
    assert not any("bought Whisk b0" in reason for reason in served)
    # Erasing another customer rewrites the folder; the browser's viewed item stays viewed.
    assert main(["forget", "c0", "--events", str(events_location), "--models-dir", str(models_dir), "--rewrite-models"]) == 0
    assert reasons(load_model(models_dir / "current")) == served
    store.close()
