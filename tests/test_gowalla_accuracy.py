"""Accuracy on the public Gowalla split, anchored to published figures (slow).

GF-CF (Shen et al., CIKM 2021) is a special case of ``graph-filter``; reproducing its
published Recall@20 / NDCG@20 to four decimals pins our metric code and data
handling to the literature. The default model is guarded against regressions.
"""

from pathlib import Path

import pytest

from recommender.algorithms import create_algorithm
from recommender.evaluation import evaluate, load_lightgcn, split_matrices
from recommender.selection import Candidate, choose_for_log
from recommender.weights import HistoryWeighting

GOWALLA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gowalla"
GF_CF = {
    "history_exponent": 0.5, "co_buyer_exponent": 1.0, "popularity_exponent": 0.5, "low_rank_exponent": 0.5,
    "low_rank_weight": 0.3, "rank": 256, "svd_solver": "exact", "normalise_parts": False, "sharpening": 0.0,
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (GOWALLA / "train.txt").exists(), reason=f"Gowalla data not found at {GOWALLA}"),
]


@pytest.fixture(scope="module")
def gowalla_logs():
    return load_lightgcn(GOWALLA / "train.txt", GOWALLA / "test.txt")


@pytest.fixture(scope="module")
def gowalla(gowalla_logs):
    return split_matrices(*gowalla_logs)


def test_gf_cf_reproduces_its_published_figures(gowalla):
    train, test = gowalla
    metrics = evaluate(create_algorithm("graph-filter", GF_CF).fit(train), train, test, (20,))
    assert metrics["customers"] == 29_858
    assert round(metrics["recall@20"], 4) == 0.1849
    assert round(metrics["ndcg@20"], 4) == 0.1518


def test_default_choice_stays_above_lightgcn(gowalla_logs, gowalla):
    # The default of `recommender train`: the automatic choice made on train.txt alone (its own
    # validation split), then the winner fitted on all of train.txt. Round one only (every
    # candidate's defaults, plain weights) with a budget it never reaches, so what is guarded is
    # the choice's verdict, not the machine's speed: with a fixed budget, under load from other
    # jobs, graph-filter's first trial may not finish and ALS (0.1627 recall) is chosen (a 300 s
    # budget did in a CI run at load 5-6; the default budget, 4x round one's estimated cost,
    # picked graph-filter at load 3.3: docs/benchmarks.md).
    train, test = gowalla
    round_one = [Candidate(algorithm, [{}]) for algorithm in ("item-knn-bm25", "als", "graph-filter")]
    choice = choose_for_log(gowalla_logs[0], threads=2, budget_seconds=3600, pool=round_one, weighting=HistoryWeighting())
    assert choice.algorithm == "graph-filter", choice.reason
    metrics = evaluate(create_algorithm(choice.algorithm, choice.params).fit(train), train, test, (20,))
    # LightGCN: 0.1830 / 0.1554. The default measured 0.1893 / 0.1575 (docs/benchmarks.md),
    # above LightGCN on both.
    assert metrics["recall@20"] >= 0.1830
    assert metrics["ndcg@20"] >= 0.1554
