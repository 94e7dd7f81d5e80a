"""The most any model can score on a demo-generator store: rank by the generator's own odds.

The demo generator draws every purchase independently from each customer's latent tastes
(:class:`recommender.demo.LatentTastes`): taste for a category, times the chance of the
item's price tier, times the item's share of its pool. No model can know more about the
next purchases than those odds, so ranking each customer's unbought items by them is the
best expected ranking there is: its test NDCG@20 / Recall@20 is the store's ceiling.

A model learns from purchases only, so the script also prints a second, lower ceiling: the
odds of a model that knows every item exactly (category, tier, share of its pool) and
estimates each customer's tastes from their training purchases alone, as Bayes would (the
posterior mean of the category tastes under the generator's Dirichlet prior, and the
posterior of the preferred tier). What separates the two is what a customer's few purchases
cannot tell; what separates the second from a model is what it has to learn about the items.

The script prints both beside what `make bench-stores` measures for the default and the tuned
peers, on the same test part (trained before 2025-11-01, judged on the last two months'
items new to each customer who bought before), so "1.05x the best peer" can be checked
against what is possible at all.

    python -m research.demo_ceiling --stores demo-dense,demo-sparse,demo-wide
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommender.demo import CATEGORIES, PREFERRED_TIER_CHANCE, TASTE_CONCENTRATION, TIERS, generate_store
from recommender.evaluation.metrics import accuracy_at_k

from .common import K, hits, parser, run_log

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_stores import DEMO_SHAPES, demo_parts, judged_parts  # noqa: E402  (the benchmark's own stores and test rule)

BATCH = 2000  # customers scored at a time (a batch x items float64 block)


def ceilings(shape: tuple[int, int, int]) -> tuple[dict[str, float], dict[str, float], int]:
    """The test metrics of the generator's odds and of the odds with tastes estimated, on the
    demo store of ``shape``, and the number of customers judged."""
    store = generate_store(*shape, seed=42)
    train_log, test_log = demo_parts(store)  # the benchmark's own store and split, latent tastes kept
    train, test = judged_parts(train_log, test_log)
    latent = store.latent
    # The matrices' rows and columns are the log's vocabularies; the generator's are its id arrays.
    customer_of_row = _positions(latent.customer_ids, train_log.customers.ids)
    item_of_column = _positions(latent.item_ids, train_log.items.ids)
    category, tier = latent.item_category[item_of_column], latent.item_tier[item_of_column]
    pool = np.bincount(category * len(TIERS) + tier, weights=latent.item_weight[item_of_column], minlength=len(CATEGORIES) * len(TIERS))
    share = latent.item_weight[item_of_column] / pool[category * len(TIERS) + tier]
    bought = (train > 0).astype(np.float64)
    per_category = (bought @ _indicator(category, len(CATEGORIES))).toarray()  # each customer's purchases per category
    per_tier = (bought @ _indicator(tier, len(TIERS))).toarray()
    taste = (per_category + TASTE_CONCENTRATION) / (per_category + TASTE_CONCENTRATION).sum(axis=1, keepdims=True)
    tier_odds = PREFERRED_TIER_CHANCE * np.eye(len(TIERS)) + (1 - PREFERRED_TIER_CHANCE) / len(TIERS)  # [preferred, bought]
    likelihood = per_tier @ np.log(tier_odds).T  # log P(the tiers bought | preferred tier), uniform prior
    preferred = np.exp(likelihood - likelihood.max(axis=1, keepdims=True))
    preferred /= preferred.sum(axis=1, keepdims=True)
    judged = np.flatnonzero(np.diff(test.indptr) > 0)
    true_parts, estimated_parts = [], []
    for start in range(0, len(judged), BATCH):
        rows = judged[start : start + BATCH]
        history, targets = sp.csr_matrix(train[rows]), test[rows]
        odds = latent.purchase_probability(customer_of_row[rows][:, None], item_of_column[None, :])
        true_parts.append(hits(odds, history, targets, K))
        estimated = taste[rows][:, category] * (preferred[rows] @ tier_odds)[:, tier] * share[None, :]
        estimated_parts.append(hits(estimated, history, targets, K))
    return _metrics(true_parts), _metrics(estimated_parts), len(judged)


def _indicator(groups: np.ndarray, count: int) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(len(groups)), (np.arange(len(groups)), groups)), shape=(len(groups), count))


def _metrics(parts: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    return accuracy_at_k(np.concatenate([h for h, _ in parts]), np.concatenate([n for _, n in parts]), K)


def _positions(generator_ids: np.ndarray, vocabulary_ids: np.ndarray) -> np.ndarray:
    lookup = {str(identifier): k for k, identifier in enumerate(generator_ids)}
    return np.array([lookup[str(identifier)] for identifier in vocabulary_ids], dtype=np.int64)


def main() -> int:
    arguments = parser(__doc__)
    arguments.add_argument("--stores", default=",".join(DEMO_SHAPES), help="comma-separated demo shapes of bench_stores.py")
    options = arguments.parse_args()
    log = run_log(__file__)
    for name in options.stores.split(","):
        true, estimated, judged = ceilings(DEMO_SHAPES[name])
        log(f"{name}: {judged:,} test customers; NDCG@20 / Recall@20 of the generator's own odds "
            f"{true['ndcg']:.4f} / {true['recall']:.4f}, of the odds with tastes estimated {estimated['ndcg']:.4f} / {estimated['recall']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
