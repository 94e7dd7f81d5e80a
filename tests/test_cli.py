"""The ``recommender`` command end to end, as a user runs it (real subprocesses)."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import train_model


def run(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "training", "--quiet", *map(str, args)], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}: {result.stderr}")
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    run("demo-data", "--out", folder / "data", "--customers", 300, "--items", 80, "--purchases", 6000, "--seed", 5)
    result = run(
        "train", "--data", folder / "data/purchases.csv", "--catalog", folder / "data/catalog.csv",
        "--algorithm", "item-knn-bm25", "--models-dir", folder / "models", "--promote",
    )
    model_path = result.stdout.strip().splitlines()[-1]
    return folder, model_path


def test_train_prints_the_model_path_last_and_promotes(trained):
    folder, model_path = trained
    assert (folder / "models" / "current").resolve() == (folder / "models" / model_path.split("/")[-1]).resolve()
    listing = run("models", "--models-dir", folder / "models", "list").stdout
    assert "*" in listing and "item-knn-bm25" in listing
    assert run("models", "list", "--models-dir", folder / "models").stdout == listing  # the option after the action too


def test_models_marks_metrics_of_an_older_evaluation_as_not_comparable(trained, tmp_path):
    import shutil

    folder, _ = trained
    models = tmp_path / "models"
    path = run("train", "--data", folder / "data/purchases.csv", "--algorithm", "item-knn-bm25", "--models-dir", models,
               "--evaluate", "--top-lists", 0).stdout.strip().splitlines()[-1]
    manifest = json.loads((Path(path) / "manifest.json").read_text())
    assert manifest["evaluation"]["lists"] == "served" and manifest["metrics"]
    # The same model as a folder written before evaluation scored the served lists.
    older = models / "20260101T000000Z-old"
    shutil.copytree(path, older)
    manifest.update(version=older.name, created_at="2026-01-01T00:00:00+00:00")
    del manifest["evaluation"]["lists"]
    (older / "manifest.json").write_text(json.dumps(manifest))
    lines = run("models", "--models-dir", models, "list").stdout.splitlines()
    old_line = next(line for line in lines if older.name in line)
    new_line = next(line for line in lines if Path(path).name in line)
    assert "(raw lists: not comparable)" in old_line and "ndcg" not in old_line.split("(raw")[1]
    assert "not comparable" not in new_line
    # The choice's metric and recall, as the manifest holds them (not the evaluated-customer count).
    metrics = manifest["metrics"]
    assert f"ndcg@20={metrics['ndcg@20']:.4f}, recall@20={metrics['recall@20']:.4f}" in new_line and "customers=" not in new_line


def test_promote_and_rollback_say_from_which_model_to_which(tmp_path):
    """An operator could not tell what a rollback had undone: it printed only where it went."""
    from tests.conftest import write_two_group_store

    write_two_group_store(tmp_path / "data")
    models = tmp_path / "models"
    first = train_model(tmp_path / "data", models).name
    second = train_model(tmp_path / "data", models, make_current=False).name
    assert run("models", "--models-dir", models, "promote", second).stdout == f"current: {first} -> {second}\n"
    assert run("models", "--models-dir", models, "rollback").stdout == f"current: {second} -> {first}\n"
    assert run("models", "--models-dir", models, "rollback").stdout == f"current: {first} -> {second}\n"  # a second one undoes the first


def test_train_says_what_graph_filter_chose_for_itself(trained, tmp_path):
    folder, _ = trained
    result = run("train", "--data", folder / "data/purchases.csv", "--algorithm", "graph-filter", "--models-dir", tmp_path / "models", "--top-lists", 0)
    chosen = json.loads((tmp_path / "models" / result.stdout.strip().splitlines()[-1].split("/")[-1] / "manifest.json").read_text())
    sharpening = chosen["fitted_settings"]["sharpening"]
    assert f"chose sharpening {sharpening}" in result.stderr


@pytest.mark.parametrize("suffix", ["csv", "parquet", "jsonl"])
def test_score_writes_top_n_for_every_customer(trained, suffix):
    folder, model_path = trained
    out = folder / f"scores.{suffix}"
    run("score", "--model", model_path, "--n", 5, "--out", out)
    if suffix == "csv":
        rows = list(csv.DictReader(out.open()))
    elif suffix == "parquet":
        rows = pq.read_table(out).to_pylist()
    else:
        rows = [json.loads(line) for line in out.open()]
    assert set(rows[0]) == {"customer_id", "item_id", "rank", "score", "source"}
    assert len({r["customer_id"] for r in rows}) == 300
    assert len(rows) == 300 * 5
    manifest = json.loads((folder / f"scores.{suffix}.manifest.json").read_text())
    assert manifest["rows"] == 1500 and manifest["customers"] == 300


def test_score_listed_customers_unknown_get_popular(trained, tmp_path):
    _, model_path = trained
    (tmp_path / "ids.txt").write_text("customer_id\n0001\nnobody\n")
    run("score", "--model", model_path, "--n", 3, "--out", tmp_path / "s.csv", "--customers", tmp_path / "ids.txt")
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert [r["customer_id"] for r in rows] == ["0001"] * 3 + ["nobody"] * 3


def test_score_warns_of_listed_customers_the_model_does_not_know(trained, tmp_path):
    # Ids are read verbatim: a spreadsheet's export that quotes one makes it another customer.
    _, model_path = trained
    (tmp_path / "ids.txt").write_text('customer_id\n"0001"\n0002\n')
    result = run("score", "--model", model_path, "--n", 3, "--out", tmp_path / "s.csv", "--customers", tmp_path / "ids.txt")
    assert f"""warning: 1 of 2 customers in {tmp_path / 'ids.txt'} are unknown to the model (the first: '"0001"'); they get popular items""" in result.stderr
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert {r["source"] for r in rows if r["customer_id"] == '"0001"'} == {"popular"}
    (tmp_path / "known.txt").write_text("0001\n")
    assert "warning" not in run("score", "--model", model_path, "--out", tmp_path / "k.csv", "--customers", tmp_path / "known.txt").stderr


def test_recommend_prints_a_readable_table(trained):
    _, model_path = trained
    output = run("recommend", "--model", model_path, "--n", 3, "0001").stdout
    assert "because you bought" in output and "category" in output
    data = json.loads(run("recommend", "--model", model_path, "--json", "0001").stdout)
    assert data["source"] == "personalised" and len(data["items"]) == 10


def test_usage_errors_exit_2_with_one_line(trained, tmp_path):
    folder, model_path = trained
    bad_param = run("train", "--data", folder / "data/purchases.csv", "--algorithm", "als", "--param", "speed=11", check=False)
    assert bad_param.returncode == 2 and "no parameter 'speed'" in bad_param.stderr
    bad_out = run("score", "--model", model_path, "--out", tmp_path / "x.txt", check=False)
    assert bad_out.returncode == 2 and "must end in one of" in bad_out.stderr
    assert run("score", "--model", model_path, "--out", tmp_path / "y.csv", "--n", 0, check=False).returncode == 2


def test_a_time_split_with_nothing_on_one_side_is_a_usage_error_and_publishes_nothing(trained, tmp_path):
    # The demo data is dated 2025: a cutoff after it holds nothing out (every metric the
    # mean of nothing, NaN), one before it leaves nothing to train on.
    folder, _ = trained
    models = tmp_path / "models"
    for cutoff, said in (("2030-01-01", "no purchases at or after the cutoff 2030-01-01"), ("2020-01-01", "no purchases before the cutoff 2020-01-01")):
        for command in (("train", "--evaluate", "--models-dir", models), ("evaluate", "--report", tmp_path / "report")):
            result = run(*command, "--data", folder / "data/purchases.csv", "--algorithm", "popular", "--split", "time", "--cutoff", cutoff, check=False)
            assert result.returncode == 2, result.stderr
            assert result.stderr.strip().count("\n") == 0 and said in result.stderr and "the data runs from 2025-" in result.stderr
    assert "no models in" in run("models", "--models-dir", models, "list").stdout
    assert not (tmp_path / "report").exists()


def test_event_weights_that_leave_purchases_weighing_nothing_are_refused(trained, tmp_path):
    # --event-weight replaces the default table: a table without purchase weighs every purchase 0.
    folder, _ = trained
    data = folder / "data/purchases.csv"
    for pairs, said in ((["view=0.2"], "purchase=1 --event-weight view=0.2"), (["wish=1"], "purchase=1 --event-weight wish=1")):
        result = run("train", "--data", data, "--algorithm", "popular", "--models-dir", tmp_path / "models",
                     *[x for pair in pairs for x in ("--event-weight", pair)], check=False)
        assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
        assert "replaces the default weights" in result.stderr and f"include it: --event-weight {said}" in result.stderr
    (tmp_path / "views.csv").write_text("customer_id,item_id,event_type\na,x,view\nb,y,view\n")
    views = run("train", "--data", tmp_path / "views.csv", "--algorithm", "popular", "--models-dir", tmp_path / "models",
                "--event-weight", "purchase=1", "--event-weight", "view=0", check=False)
    assert views.returncode == 1 and views.stderr.strip().count("\n") == 0
    assert "views.csv: no row has an event type weighted above 0" in views.stderr and "its event types: view; the weights: purchase=1, view=0" in views.stderr


def test_bad_data_exits_1_naming_the_line_and_publishes_nothing(tmp_path):
    (tmp_path / "bad.csv").write_text("customer_id,item_id,quantity\na,x,1\nb,y,-3\n")
    result = run("train", "--data", tmp_path / "bad.csv", "--models-dir", tmp_path / "models", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "bad.csv, line 3, column 'quantity'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())
    skipped = run("train", "--data", tmp_path / "bad.csv", "--models-dir", tmp_path / "models", "--algorithm", "popular", "--on-bad-rows", "skip")
    assert "skipped 1 bad row" in skipped.stderr


def test_damaged_model_is_refused_clearly(trained, tmp_path):
    import shutil

    _, model_path = trained
    copy = tmp_path / "copy"
    shutil.copytree(model_path, copy)
    (copy / "item_ids.npy").write_bytes(b"garbage")
    result = run("recommend", "--model", copy, "0001", check=False)
    assert result.returncode == 1 and "checksum mismatch" in result.stderr and "Traceback" not in result.stderr


def test_serve_starts_the_api_on_loopback_and_logs_without_terminal_colours(trained, tmp_path):
    import time
    import urllib.error
    import urllib.request

    from tests.conftest import free_port

    _, model_path = trained
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "training", "serve", "--model", model_path, "--port", str(port), "--events-db", tmp_path / "e.sqlite3"],
        stdout=log, stderr=log,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/customers/0001/recommendations?n=2") as reply:
                    body = json.loads(reply.read())
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        assert body["source"] == "personalised" and len(body["items"]) == 2
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/no/such/page")  # werkzeug colours a 404 on a terminal
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
    text = (tmp_path / "serve.log").read_text()
    assert "/no/such/page" in text and "\x1b[" not in text


@pytest.mark.parametrize("program, name", [(["training", "serve"], "recommender serve"), (["serving"], "python -m serving")])
@pytest.mark.parametrize("port", [99999, 65536, -1])
def test_serve_refuses_a_port_out_of_range_instead_of_wrapping_it_round(program, name, port, tmp_path):
    command = [sys.executable, "-m", *program, "--model", tmp_path / "models", "--port", str(port), "--events-db", tmp_path / "e.sqlite3"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = server.communicate(timeout=30)
    except subprocess.TimeoutExpired:  # serving on some other port: the bug
        server.kill()
        server.communicate()
        pytest.fail(f"{name} --port {port} started a server instead of refusing the port")
    assert server.returncode == 2 and stderr.endswith(f"{name}: error: --port must be 1-65535 (0: any free port), not {port}\n")


def test_help_is_plain_text_and_says_every_default():
    assert "``" not in run("--help").stdout
    recommend = run("recommend", "--help").stdout
    assert "(default: models/current)" in recommend and "(default: 10)" in recommend


def test_mistakes_a_new_user_makes_get_one_clear_line(trained, tmp_path):
    folder, _ = trained
    purchases = folder / "data/purchases.csv"
    folder_given = run("train", "--data", folder / "data", "--models-dir", tmp_path / "m", check=False)
    assert folder_given.returncode == 1 and "is a folder; give the file itself" in folder_given.stderr
    (tmp_path / "a-file").write_text("")
    unwritable = run("train", "--data", purchases, "--models-dir", tmp_path / "a-file" / "models", check=False)
    assert unwritable.returncode == 2 and unwritable.stderr.count("\n") == 1
    assert "--models-dir" in unwritable.stderr and "cannot write there" in unwritable.stderr and "Errno" not in unwritable.stderr
    out_of_range = run("train", "--data", purchases, "--algorithm", "graph-filter", "--param", "rank=-5", check=False)
    assert out_of_range.returncode == 2 and "rank must be at least 1" in out_of_range.stderr


def test_recommend_folds_in_the_events_the_api_stored(trained, tmp_path):
    from recommender.events import Event, EventStore

    _, model_path = trained
    before = json.loads(run("recommend", "--model", model_path, "--n", 3, "--json", "0001").stdout)
    first = before["items"][0]["item_id"]
    EventStore(tmp_path / "events.sqlite3").add([Event("0001", first)])
    after = json.loads(run("recommend", "--model", model_path, "--n", 3, "--json", "--events", tmp_path / "events.sqlite3", "0001").stdout)
    assert first not in [item["item_id"] for item in after["items"]]
    missing = run("recommend", "--model", model_path, "--events", tmp_path / "nope.sqlite3", "0001", check=False)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_every_command_that_takes_events_names_a_file_that_is_no_event_store(trained, tmp_path):
    # SQLite's own "file is not a database" does not say which file.
    import shutil

    folder, model_path = trained
    data = tmp_path / "ok.csv"
    shutil.copy(folder / "data/purchases.csv", data)
    content = data.read_bytes()
    for command in (
        ("recommend", "--model", model_path, "--events", data, "0001"),
        ("forget", "0001", "--events", data, "--models-dir", tmp_path / "models"),
        ("experiments", "report", "--events", data, "--out", tmp_path / "report.html"),
        ("train", "--data", data, "--algorithm", "popular", "--models-dir", tmp_path / "models", "--events", f"sqlite:///{data}"),
    ):
        result = run(*command, check=False)
        assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr
        assert f"{data} is not an SQLite event store (file is not a database)" in result.stderr
    assert data.read_bytes() == content and not list(tmp_path.glob("ok.csv-*"))  # no -signal, -wal or -shm file beside it
    folder_given = run("recommend", "--model", model_path, "--events", tmp_path, "0001", check=False)
    assert folder_given.returncode == 2 and f"--events {tmp_path} is a folder, not an SQLite event store" in folder_given.stderr


def test_score_filters_from_the_command_line(trained, tmp_path):
    _, model_path = trained
    from recommender.artifacts import load_model

    model = load_model(model_path)
    category = str(model.catalog.categories[0])
    run("score", "--model", model_path, "--n", 3, "--out", tmp_path / "c.csv", "--category", category.upper())
    rows = list(csv.DictReader((tmp_path / "c.csv").open()))
    assert rows and {model.catalog.categories[model.items.index(r["item_id"])] for r in rows} == {category}
    (tmp_path / "items.txt").write_text("item_id\n" + "\n".join(model.items.ids[:4]) + "\nnot-an-item\n")
    result = run("score", "--model", model_path, "--n", 3, "--out", tmp_path / "i.csv", "--include", tmp_path / "items.txt", "--include-purchased")
    assert "1 of 5 items" in result.stderr
    assert {r["item_id"] for r in csv.DictReader((tmp_path / "i.csv").open())} <= set(model.items.ids[:4])
    bad = run("score", "--model", model_path, "--out", tmp_path / "z.csv", "--category", "No Such Thing", check=False)
    assert bad.returncode == 2 and "known categories" in bad.stderr
    (tmp_path / "strangers.txt").write_text("not-an-item\nnor-this\n")
    strangers = run("score", "--model", model_path, "--out", tmp_path / "s.csv", "--include", tmp_path / "strangers.txt", check=False)
    assert strangers.returncode == 2 and "strangers.txt: none of the 2 items to include is known to the model" in strangers.stderr
    assert not (tmp_path / "s.csv").exists()


def test_quiet_is_taken_before_or_after_the_command():
    from training.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["score", "--model", "m", "--out", "o.csv", "--quiet"]).quiet
    assert parser.parse_args(["-q", "score", "--model", "m", "--out", "o.csv"]).quiet
    assert not parser.parse_args(["score", "--model", "m", "--out", "o.csv"]).quiet


def test_threads_is_taken_before_or_after_the_command(trained, tmp_path):
    # The README's score paragraph shows `recommender score ... --threads N`.
    from training.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["score", "--out", "o.csv", "--threads", "3"]).threads == 3
    assert parser.parse_args(["--threads", "2", "score", "--out", "o.csv"]).threads == 2
    assert parser.parse_args(["score", "--out", "o.csv"]).threads >= 1
    _, model_path = trained
    run("score", "--model", model_path, "--n", 1, "--out", tmp_path / "s.csv", "--threads", 1)


def test_a_reader_that_goes_away_is_not_reported_as_an_error(trained):
    # `recommender recommend ... | head`: the pipe is closed before the answer is written.
    _, model_path = trained
    process = subprocess.Popen([sys.executable, "-m", "training", "--quiet", "recommend", "--model", model_path, "--json", "0001"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    stderr = process.communicate(timeout=120)[1].decode()
    assert process.returncode == 1 and "Broken pipe" not in stderr and "Traceback" not in stderr and "error" not in stderr


def test_train_names_the_history_weightings_the_search_did_not_reach():
    from training.commands import _untried_weightings

    plain, log, recent = ({"half_life_days": None, "repeats": "count"}, {"half_life_days": None, "repeats": "log"},
                          {"half_life_days": 30.0, "repeats": "log"})
    choice = {"validation": {"history_weightings": [plain, log, recent]},
              "trials": [{"status": "done", "history_weighting": plain}, {"status": "done", "history_weighting": log},
                         {"status": "skipped", "history_weighting": recent}]}
    assert _untried_weightings(choice) == ["half-life 30 days, repeats log"]  # a skipped trial did not try it
    choice["trials"][2]["status"] = "done"
    assert _untried_weightings(choice) == []
    assert _untried_weightings({"validation": {"history_weightings": [plain]}, "trials": [{"status": "done"}]}) == []


def test_recommend_says_when_the_customer_is_unknown_and_how_the_model_spells_a_close_id(trained):
    _, model_path = trained
    known = run("recommend", "--model", model_path, "--n", 3, "0001")
    assert "items bought" in known.stdout and "note:" not in known.stderr
    spreadsheet = run("recommend", "--model", model_path, "--n", 3, "0001.0")  # as a spreadsheet writes the id
    assert "0 items bought — popular" in spreadsheet.stdout
    assert "note: customer 0001.0 is not in the model's training data; it knows 0001" in spreadsheet.stderr
    stranger = run("recommend", "--model", model_path, "--n", 3, "nobody")
    assert stranger.stderr.strip().endswith("note: customer nobody is not in the model's training data")


def test_large_scores_are_printed_as_whole_numbers():
    from training.commands import _score_text

    assert [_score_text(v) for v in (39320.0, 1356004.4, 0.12345, 4.0)] == ["39,320", "1,356,004", "0.1235", "4"]


def test_an_id_list_that_is_not_utf8_is_named_with_the_cause(trained, tmp_path):
    # Decoded blindly, a UTF-16 list failed with "'utf-8' codec can't decode byte 0xff", naming no file.
    _, model_path = trained
    (tmp_path / "utf16.txt").write_text("customer_id\n0001\n", encoding="utf-16")
    (tmp_path / "latin1.txt").write_bytes(b"item_id\nok\ncaf\xe9\n")
    for option, name, said in (("--customers", "utf16.txt", "line 1: is UTF-16 text; save the file as UTF-8"),
                               ("--include", "latin1.txt", "line 3: is not valid UTF-8 text; save the file as UTF-8")):
        result = run("score", "--model", model_path, "--out", tmp_path / "s.csv", option, tmp_path / name, check=False)
        assert result.returncode == 1 and result.stderr.strip().count("\n") == 0, result.stderr
        assert f"{tmp_path / name}, {said}" in result.stderr
    assert not (tmp_path / "s.csv").exists()


def test_tune_names_a_search_space_that_is_not_json(trained, tmp_path):
    folder, _ = trained
    (tmp_path / "README.md").write_text("# not a search space\n")
    result = run("tune", "--data", folder / "data/purchases.csv", "--space", tmp_path / "README.md", "--out", tmp_path / "t.json", check=False)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr
    assert f"--space {tmp_path / 'README.md'} is not JSON: Expecting value: line 1 column 1" in result.stderr


def test_every_output_option_is_checked_before_the_work(trained, tmp_path):
    # /proc takes no new file, even for root; the error came after the work, naming a temporary file.
    folder, model_path = trained
    data = folder / "data/purchases.csv"
    (tmp_path / "a-file").write_text("")
    events = tmp_path / "events.sqlite3"
    from recommender.events import Event, EventStore

    EventStore(events).add([Event("0001", "x")])
    for option, out, command in (
        ("--out", "/proc/x.csv", ("score", "--model", model_path)),
        ("--out", "/proc/x.json", ("tune", "--data", data, "--algorithm", "popular")),
        ("--out", "/proc/r.html", ("experiments", "report", "--events", events)),
        ("--report", "/proc/x", ("evaluate", "--data", data, "--algorithm", "popular")),
        ("--out", "/proc/demo", ("demo-data",)),
        ("--out", "/proc/p.csv", ("convert-lightgcn", tmp_path / "missing.txt")),
        ("--models-dir", "/proc/models", ("train", "--data", data, "--algorithm", "popular")),
    ):
        result = run(*command, option, out, check=False)
        assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr
        assert result.stderr.endswith(f"error: {option} {out}: cannot write there (folder /proc is not writable)\n"), result.stderr
    under_a_file = run("score", "--model", model_path, "--out", tmp_path / "a-file" / "new" / "x.csv", check=False)
    assert under_a_file.returncode == 2 and f"cannot write there ({tmp_path / 'a-file'} is a file, not a folder)" in under_a_file.stderr
    assert run("demo-data", "--out", tmp_path / "a-file", check=False).returncode == 2
    # A missing folder is still created, as before.
    run("score", "--model", model_path, "--n", 1, "--out", tmp_path / "new" / "deeper" / "s.csv")
    assert (tmp_path / "new" / "deeper" / "s.csv").is_file()


def test_a_failed_write_names_the_output_not_its_temporary_file(trained):
    from recommender.artifacts import load_model
    from recommender.files import write_bytes_atomic
    from training.batch import score_all

    _, model_path = trained
    for write, out in ((lambda out: score_all(load_model(model_path), out, n=1), "/proc/x.csv"),
                       (lambda out: write_bytes_atomic(out, b"{}"), "/proc/x.json")):
        with pytest.raises(OSError) as raised:
            write(out)
        assert str(raised.value).startswith(f"cannot write {out}: ") and "tmp" not in str(raised.value) and "/proc/." not in str(raised.value)


def test_a_time_split_without_a_readable_cutoff_is_a_usage_error(trained, tmp_path):
    folder, _ = trained
    for cutoff, said in (((), "the time split needs --cutoff"), (("--cutoff", "soon"), "--cutoff 'soon' is neither ISO 8601 nor epoch seconds")):
        for command in (("evaluate", "--report", tmp_path / "report"), ("train", "--evaluate", "--models-dir", tmp_path / "models")):
            result = run(*command, "--data", folder / "data/purchases.csv", "--algorithm", "popular", "--split", "time", *cutoff, check=False)
            assert result.returncode == 2 and result.stderr.strip().count("\n") == 0 and said in result.stderr, result.stderr


def test_negative_top_lists_and_an_empty_customer_id_are_usage_errors(trained, tmp_path):
    folder, model_path = trained
    negative = run("train", "--data", folder / "data/purchases.csv", "--algorithm", "popular", "--models-dir", tmp_path / "models",
                   "--top-lists", -1, check=False)
    assert negative.returncode == 2 and "--top-lists must be 0 (no cache) or a number of items, not -1" in negative.stderr
    assert not (tmp_path / "models").exists()
    for customer_id, said in (("", "CUSTOMER_ID is empty"), ("a\tb", "CUSTOMER_ID contains control characters")):
        result = run("recommend", "--model", model_path, customer_id, check=False)
        assert result.returncode == 2 and result.stderr.strip().endswith(said), result.stderr


def test_an_id_list_with_a_byte_order_mark_keeps_its_header_out(trained, tmp_path):
    # A spreadsheet's "CSV UTF-8" starts with a byte-order mark: the header line read as an id.
    _, model_path = trained
    (tmp_path / "ids.csv").write_bytes("customer_id\n0001\n0002\n".encode("utf-8-sig"))
    result = run("score", "--model", model_path, "--n", 2, "--out", tmp_path / "s.csv", "--customers", tmp_path / "ids.csv")
    assert "unknown to the model" not in result.stderr
    assert {row["customer_id"] for row in csv.DictReader((tmp_path / "s.csv").open())} == {"0001", "0002"}


@pytest.mark.parametrize("threads", ["0", "-1"])
def test_threads_below_one_are_refused(threads):
    # threadpoolctl takes 0 or -1 as "no limit": the opposite of a small number.
    result = run("--threads", threads, "models", "--models-dir", "nowhere", "list", check=False)
    assert result.returncode == 2 and f"--threads must be at least 1, not {threads}" in result.stderr
