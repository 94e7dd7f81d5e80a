"""Does a blend of the automatic choice's two best algorithms beat its winner on test? (issue 17)

    python -m research.store_blend [--stores online-retail,demo-dense,demo-sparse,demo-wide] [--budget S]

Per store, cut as ``benchmarks/bench_stores.py`` cuts it (its functions, imported):
1. the automatic choice on the training part, exactly as ``recommender train`` runs it;
2. the best trial of each of its two best algorithms, both fitted (with the settings the
   choice would refit them with) on the choice's validation split, under the winner's
   history weighting (a blend has one history row per customer, so one weighting);
3. per customer, each part's scores over the catalogue normalised two ways, then mixed as
   (1 - w)·A + w·B for w on a grid, A the winner's part:
   - ``z``: divided by the row's standard deviation (a z-score: the mean's shift is the
     same for every item of the row, so it cannot change the ranking, and without it an
     item neither part supports keeps the score 0 that the top-N path cuts at);
   - ``rank``: the item's average rank in the row divided by the catalogue's size, less
     the rank of a 0 score (so again 0 means unsupported);
   w is chosen per normalisation on the validation NDCG@20;
4. both parts refitted on the whole training part, and the test part scored at w 0 (the
   winner alone: the default's test figure), w 1 (the runner-up alone) and every w.

Lists go through the served top-N path (``recommender.topn.rank_rows``: seen items out, the
cut at the first unsupported item, the popular top-up), as ``recommender evaluate`` scores
them. BLAS threads: one unless OPENBLAS_NUM_THREADS says otherwise (the trials' processes
use --threads). Results: stdout and research/logs/store_blend-<time>.log.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import time  # noqa: E402

import numpy as np  # noqa: E402
from scipy.stats import rankdata  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from benchmarks.bench_stores import DEMO_SHAPES, demo, judged_parts, online_retail  # noqa: E402
from recommender.algorithms import create_algorithm  # noqa: E402
from recommender.evaluation.metrics import accuracy_at_k, hit_matrix  # noqa: E402
from recommender.interactions import Interactions  # noqa: E402
from recommender.ranking import top_k  # noqa: E402
from recommender.selection import DONE, choose_for_log, validation_split  # noqa: E402
from recommender.selection.choice import refit_params  # noqa: E402
from recommender.topn import PopularItems, rank_rows  # noqa: E402
from research.common import parser, run_log  # noqa: E402

STORES = ("online-retail", *DEMO_SHAPES)
WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
CUT = 20
# Scores held at once per part (float64, several copies per normalisation): about 30 MB each.
SCORES_PER_CHUNK = 1 << 22


def by_deviation(scores: np.ndarray) -> np.ndarray:
    return scores / np.maximum(scores.std(axis=1, keepdims=True), 1e-12)


def by_rank(scores: np.ndarray) -> np.ndarray:
    ranks = rankdata(scores, method="average", axis=1) / scores.shape[1]
    # The average rank the row's 0 scores have (or would have): count below, then the ties' middle.
    below, zeros = (scores < 0).sum(axis=1), (scores == 0).sum(axis=1)
    ranks -= ((below + (zeros + 1) / 2) / scores.shape[1])[:, None]
    ranks[scores == 0] = 0.0
    return ranks


NORMALISATIONS = {"z": by_deviation, "rank": by_rank}


class FixedScores:
    """Precomputed scores of some customers behind the one method ``rank_rows`` calls, so the
    blend's lists go through the served path exactly as an algorithm's do."""

    personalised = True

    def __init__(self, scores: np.ndarray, customers: np.ndarray):
        self.table, self.customers = scores, customers

    def recommend(self, history, n, *, customers, exclude_seen=True, allowed=None):
        scores = np.array(self.table[np.searchsorted(self.customers, customers)], dtype=np.float32)
        if exclude_seen:
            scores[np.repeat(np.arange(history.shape[0]), np.diff(history.indptr)), history.indices] = -np.inf
        return top_k(scores, n)


def grid_figures(parts, history, targets, weights) -> dict:
    """{(normalisation, w): {"ndcg": ..., "recall": ...}} over the customers with targets."""
    relevant = np.diff(targets.indptr)
    customers = np.flatnonzero(relevant > 0)
    popular = PopularItems(history)
    hits = {(norm, w): [] for norm in NORMALISATIONS for w in weights}
    step = max(1, SCORES_PER_CHUNK // history.shape[1])
    for start in range(0, len(customers), step):
        chunk = customers[start:start + step]
        rows = history[chunk]
        raw = [np.asarray(part.scores(rows, chunk), dtype=np.float64) for part in parts]
        unsupported = (raw[0] == 0) & (raw[1] == 0)
        for norm, normalise in NORMALISATIONS.items():
            a, b = (normalise(s) for s in raw)
            for w in weights:
                mixed = (1 - w) * a + w * b
                mixed[unsupported] = 0.0
                ranked = rank_rows(FixedScores(mixed, chunk), popular, rows, chunk, CUT)
                hits[(norm, w)].append(hit_matrix(ranked.items, targets[chunk]))
    return {key: accuracy_at_k(np.vstack(found), relevant[customers], CUT) for key, found in hits.items()}


def fitted(trial, matrix):
    return create_algorithm(trial.algorithm, refit_params(trial)).fit(matrix)


def show(trial) -> str:
    return f"{trial.algorithm} {refit_params(trial)}"


def store(name: str, budget: float | None, threads: int, weights, log) -> dict:
    train_log, test_log = online_retail() if name == "online-retail" else demo(DEMO_SHAPES[name])
    _, test = judged_parts(train_log, test_log)
    split = validation_split(train_log)  # the choice's own split (same seed)
    started = time.perf_counter()
    choice = choose_for_log(train_log, budget_seconds=budget, threads=threads)
    log(f"\n## {name}: choice in {time.perf_counter() - started:.1f} s, {choice.ending or 'round one only'}")
    best = {}
    for trial in choice.trials:
        log(f"   trial {trial.algorithm} {trial.params} {trial.weighting or ''} {trial.status} "
            f"{trial.metrics.get('ndcg@20', float('nan')):.4f}")
        if trial.status == DONE and (trial.algorithm not in best or trial.metrics["ndcg@20"] > best[trial.algorithm].metrics["ndcg@20"]):
            best[trial.algorithm] = trial
    first, second = sorted(best.values(), key=lambda t: -t.metrics["ndcg@20"])[:2]
    weighting = choice.weighting
    log(f"   parts: A = {show(first)} (val {first.metrics['ndcg@20']:.4f}), B = {show(second)} (val {second.metrics['ndcg@20']:.4f}"
        f"{'' if second.weighting == first.weighting else ', under ' + str(second.weighting or 'plain')}); "
        f"blended under A's weighting: {weighting.describe()}")

    fit = split.fit_matrix(weighting)
    validation = grid_figures([fitted(first, fit), fitted(second, fit)], fit, split.targets, weights)
    chosen = {}
    for norm in NORMALISATIONS:
        log(f"   val {norm:>4}: " + "  ".join(f"w {w:g} {validation[(norm, w)]['ndcg']:.4f}" for w in weights))
        inner = [w for w in weights if 0 < w < 1]
        chosen[norm] = max(inner, key=lambda w: validation[(norm, w)]["ndcg"])

    train = Interactions.from_log(train_log, weighting).matrix
    tested = grid_figures([fitted(first, train), fitted(second, train)], train, test, weights)
    for norm in NORMALISATIONS:
        log(f"   test {norm:>4}: " + "  ".join(f"w {w:g} {tested[(norm, w)]['ndcg']:.4f}" for w in weights))
    single = tested[("z", 0.0)]
    result = {"store": name, "single": single, "runner_up": tested[("z", 1.0)], "parts": (show(first), show(second)),
              "val_single": validation[("z", 0.0)]["ndcg"]}
    for norm, w in chosen.items():
        figure = tested[(norm, w)]
        result[norm] = (w, validation[(norm, w)]["ndcg"], figure)
        log(f"   {norm}: w {w:g} chosen on validation ({validation[(norm, w)]['ndcg']:.4f} against the winner's "
            f"{validation[('z', 0.0)]['ndcg']:.4f}); test NDCG@20 {figure['ndcg']:.4f} against {single['ndcg']:.4f} "
            f"({figure['ndcg'] / single['ndcg'] - 1:+.1%}), Recall@20 {figure['recall']:.4f} against {single['recall']:.4f}")
    return result


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("--stores", default=",".join(STORES))
    cli.add_argument("--budget", type=float, help="the choice's budget (default: the product's default for the data)")
    cli.add_argument("--threads", type=int, default=1, help="BLAS threads of the choice's trials")
    cli.add_argument("--weights", default=",".join(f"{w:g}" for w in WEIGHTS), help="the grid of w (0 and 1 are the parts alone)")
    args = cli.parse_args()
    weights = tuple(sorted({0.0, 1.0, *(float(w) for w in args.weights.split(","))}))
    log = run_log(__file__)
    results = []
    with threadpool_limits(int(os.environ["OPENBLAS_NUM_THREADS"]), "blas"):
        for name in args.stores.split(","):
            if name not in STORES:
                cli.error(f"unknown store {name!r}")
            results.append(store(name, args.budget, args.threads, weights, log))
    log("\n| store | winner (A) | runner-up (B) | A test | B test | z blend: w, val, test | rank blend: w, val, test |")
    log("|---|---|---|---|---|---|---|")
    for r in results:
        cells = [f"w {r[n][0]:g}, {r[n][1]:.4f} (A {r['val_single']:.4f}), **{r[n][2]['ndcg']:.4f}** "
                 f"({r[n][2]['ndcg'] / r['single']['ndcg'] - 1:+.1%})" for n in NORMALISATIONS]
        log(f"| {r['store']} | {r['parts'][0]} | {r['parts'][1]} | {r['single']['ndcg']:.4f} | {r['runner_up']['ndcg']:.4f} | "
            + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
