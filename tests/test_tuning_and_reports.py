"""Tuning on validation only, evaluation reports, and training with --evaluate."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from recommender.artifacts import load_model
from recommender.demo import generate_store, write_store
from recommender.purchases import load_purchases
from recommender.tuning import sample_params, tune
from tests.test_cli import run


def test_sample_params_respects_kinds():
    rng = np.random.default_rng(0)
    space = {"factors": {"choice": [8, 16]}, "alpha": {"loguniform": [1.0, 100.0]}, "k": {"uniform": [2, 9]}}
    for _ in range(20):
        params = sample_params(space, rng)
        assert params["factors"] in (8, 16) and 1.0 <= params["alpha"] <= 100.0
        assert isinstance(params["k"], int) and 2 <= params["k"] <= 9
    with pytest.raises(ValueError, match="unknown kind"):
        sample_params({"x": {"normal": [0, 1]}}, rng)


def test_tune_starts_from_defaults_and_sorts_best_first(demo_files):
    log = load_purchases(demo_files["purchases"])
    trials = tune(log, "item-knn", {"neighbours": {"choice": [5, 50, 400]}}, metric="ndcg@10", max_trials=4, budget_seconds=60)
    assert trials[0].metrics["ndcg@10"] == max(t.metrics["ndcg@10"] for t in trials)
    assert 200 in [t.params["neighbours"] for t in trials]  # the defaults are always tried
    assert len(trials) == 4  # defaults + the three choices, then the space is exhausted
    with pytest.raises(ValueError, match="no parameter"):
        tune(log, "item-knn", {"speed": {"choice": [1]}})


def test_tune_keeps_its_budget(demo_files, tmp_path):
    log = load_purchases(demo_files["purchases"])
    started = time.monotonic()
    # Defaults first (seconds), then a million BPR epochs: estimated from the first trial at
    # hours, so never started; the search ends with the budget.
    stopped = []
    trials = tune(log, "bpr", {"iterations": {"choice": [1_000_000]}}, budget_seconds=30, on_skip=stopped.append)
    assert len(trials) == 1 and trials[0].params["iterations"] == 200
    assert [s.status for s in stopped] == ["skipped"] and "estimated" in stopped[0].note
    assert time.monotonic() - started < 30 + 10
    # BPR's defaults on 200,000 purchases take seconds (3.5 s on an idle fast machine), so
    # even the first trial is stopped when a budget of a second ends (or, estimated at the
    # prior speed as the automatic choice estimates it, not started at all).
    larger = load_purchases(write_store(generate_store(customers=4000, items=1000, purchases=200_000, seed=1), tmp_path)["purchases"])
    started, stopped = time.monotonic(), []
    with pytest.raises(ValueError, match="no trial finished within the budget of 1 s"):
        tune(larger, "bpr", {}, budget_seconds=1, on_skip=stopped.append)
    assert time.monotonic() - started < 1 + 5 and [s.status for s in stopped] in (["skipped"], ["stopped"])
    # The first trial's prior estimate (a trial's overhead alone is 0.5 s) is over the budget,
    # but the defaults are never skipped on an estimate (a prior 8x too high once made tune
    # skip them and write settings worse than them): started, and stopped at the deadline.
    skipped, started = [], time.monotonic()
    with pytest.raises(ValueError, match="no trial finished"):
        tune(larger, "item-knn-bm25", {}, budget_seconds=0.1, on_skip=skipped.append)
    assert [s.status for s in skipped] == ["stopped"]
    assert time.monotonic() - started < 0.1 + 5
    # A later trial estimated over what is left is still skipped: after the defaults, a million
    # epochs of BPR are not started (above).


def test_tune_cli_writes_params_that_train_picks_up(demo_files, tmp_path):
    out = tmp_path / "best.json"
    tuned = run("tune", "--data", demo_files["purchases"], "--algorithm", "item-knn", "--trials", 2, "--out", out)
    assert "ndcg@20" in tuned.stdout
    # make train reads only tuned/ALGO.json: another file is used by naming it.
    assert "picks it up" not in tuned.stderr and f"train with it: recommender train --algorithm item-knn --params-file {out}" in tuned.stderr
    best = json.loads(out.read_text())
    assert best["algorithm"] == "item-knn" and "neighbours" in best["params"]
    path = run(
        "train", "--data", demo_files["purchases"], "--algorithm", "item-knn", "--params-file", out,
        "--param", "neighbours=7", "--models-dir", tmp_path / "models", "--evaluate",
    ).stdout.strip().splitlines()[-1]
    model = load_model(path)
    assert model.algorithm.config.neighbours == 7  # --param overrides the file
    assert model.manifest["metrics"]["recall@20"] > 0
    report = (tmp_path / "models" / path.split("/")[-1] / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 3 and "recall@20" in report


def test_make_train_reads_only_the_checkouts_tuned_file(tmp_path, monkeypatch):
    from training.commands import PROJECT, make_train_reads

    assert make_train_reads(PROJECT / "tuned" / "als.json", "als")
    monkeypatch.chdir(PROJECT)
    assert make_train_reads("tuned/als.json", "als")  # tune's default --out, run where make runs it
    assert not make_train_reads("tuned/als.json", "ease") and not make_train_reads(tmp_path / "tuned" / "als.json", "als")
    monkeypatch.chdir(tmp_path)
    assert not make_train_reads("tuned/als.json", "als")


def test_evaluate_cli_prints_metrics_and_writes_report(demo_files, tmp_path):
    output = run("evaluate", "--data", demo_files["purchases"], "--algorithm", "popular", "--k", "5,10", "--report", tmp_path / "r").stdout
    assert "recall@10" in output and "ndcg@5" in output
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["by_history_length"] and report["metrics"]["customers"] > 0
    for name in ("report.json", "report.html"):
        assert (tmp_path / "r" / name).stat().st_mode & 0o044 == 0o044  # readable by others, like any file
    customers = int(report["metrics"]["customers"])
    assert f"<td>customers</td><td>{customers:,}</td>" in (tmp_path / "r" / "report.html").read_text()
    assert run("evaluate", "--data", demo_files["purchases"], "--k", "ten", check=False).returncode == 2
    loud = subprocess.run([sys.executable, "-m", "training", "evaluate", "--data", str(demo_files["purchases"]), "--algorithm", "popular",
                           "--report", str(tmp_path / "r2")], capture_output=True, text=True, check=True)
    assert "scoring the test customers: 100%|" in loud.stderr and f"| {customers}/{customers} " in loud.stderr  # a bar, as train has


def test_every_algorithm_has_a_search_space_of_its_own_parameters():
    # `make tune` reads training/search_spaces/<algorithm>.json; a missing or stale file
    # would fail only when a data scientist runs it.
    import json
    from pathlib import Path

    import numpy as np

    from recommender.algorithms import ALGORITHMS, parse_params
    from recommender.tuning import sample_params

    spaces = Path(__file__).resolve().parents[1] / "training" / "search_spaces"
    for name in ALGORITHMS:
        space = json.loads((spaces / f"{name}.json").read_text())
        for seed in range(5):
            parse_params(name, sample_params(space, np.random.default_rng(seed)))


def test_evaluate_chooses_with_the_options_train_takes(demo_files, tmp_path):
    """--budget, --metric and --memory-limit-gb reach evaluate's automatic choice, as train's."""
    run("evaluate", "--data", demo_files["purchases"], "--budget", "30", "--metric", "recall@10", "--memory-limit-gb", "0.5",
        "--k", "10", "--report", tmp_path / "r")
    choice = json.loads((tmp_path / "r" / "report.json").read_text())["choice"]
    assert choice["budget_seconds"] == 30 and choice["metric"] == "recall@10"
    assert all("recall@10" in trial["metrics"] for trial in choice["trials"] if trial["status"] == "done")
    assert run("evaluate", "--data", demo_files["purchases"], "--budget", "0", check=False).returncode == 2
