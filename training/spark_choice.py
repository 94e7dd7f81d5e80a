"""spark-als's settings chosen on the store's own data, inside the Spark job
(``recommender train --engine spark`` without ``--param``).

Spark MLlib holds one of the product's algorithms, implicit ALS, so on Spark the automatic
choice is a choice of its settings, judged as the local choice judges its trials:

- validation: a seeded fifth of the purchases of at most 2,000 customers (those with three
  or more) is held out of the cells Spark aggregated (:func:`recommender.algorithms.held_out.hold_out`,
  the same random split graph-filter chooses its own settings on); Spark fits on the rest,
  left by an anti-join, so only the held-out cells (small) cross from the driver;
- each of :data:`SETTINGS` is fitted by Spark, and its factors, collected as the model's are,
  are judged on the driver by the product's evaluator: ``--metric`` (NDCG@20 by default) of
  the lists as served;
- the caller refits the best on every cell.

``budget_seconds``: a setting after the defaults is not started when the slowest fit so far
would not end within what is left; a fit already running is not stopped (Spark's own job).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recommender.algorithms.held_out import hold_out
from recommender.algorithms.spark_als import SparkALS, fit_spark_als, spark_ratings
from recommender.evaluation import evaluate
from recommender.selection import DEFAULT_METRIC, parse_metric
from recommender.selection.trials import settings_text

# The defaults first (so the choice is never worse than them on validation), then Spark's
# ALS-WR regularisation a decade either way, then the confidence of a purchase.
SETTINGS = ({}, {"regularization": 0.1}, {"regularization": 0.001}, {"alpha": 40.0}, {"alpha": 2.0})


@dataclass
class SparkChoice:
    params: dict  # the winner's settings ({}: the defaults)
    metric: str
    trials: list[dict]  # per setting: params, status, metrics, seconds
    validation: dict
    seconds: float
    reason: str

    def record(self) -> dict:
        """For the manifest's ``choice``."""
        return {"engine": "spark", "algorithm": SparkALS.name, "metric": self.metric, "params": self.params, "reason": self.reason,
                "validation": self.validation, "trials": self.trials, "seconds": round(self.seconds, 2)}


def choose_settings(indexed, history: sp.csr_matrix, *, metric: str = DEFAULT_METRIC, seed: int = 42,
                    budget_seconds: float | None = None, on_trial: Callable[[dict], None] | None = None) -> SparkChoice:
    """Fit every setting on the validation split of ``indexed`` (the job's DataFrame of
    customer, item, weight: the cells of ``history``, the same matrix on the driver) and
    return the best by ``metric`` on validation. ``on_trial(trial)`` after each setting."""
    import pyarrow as pa
    from pyspark.sql import functions as F

    name, cut_off = parse_metric(metric)
    metric, shown_metrics = f"{name}@{cut_off}", {f"{name}@{cut_off}", f"ndcg@{cut_off}", f"recall@{cut_off}"}
    started = time.monotonic()
    kept, customers, targets = hold_out(history, seed)
    validation = {"kind": "random", "customers": int(len(customers)), "held_out_purchases": int(targets.nnz), "seed": seed}
    if not len(customers):
        return SparkChoice({}, metric, [], validation, time.monotonic() - started, "the defaults: too few customers with three purchases or more to hold any out")
    rows = customers[np.repeat(np.arange(len(customers)), np.diff(targets.indptr))]
    judged = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, targets.indices)), shape=history.shape)
    held = indexed.sparkSession.createDataFrame(pa.table({"customer": rows.astype(np.int32), "item": targets.indices.astype(np.int32)}))
    ratings = spark_ratings(indexed.join(F.broadcast(held), ["customer", "item"], "left_anti")).cache()
    trials, slowest = [], 0.0
    for params in SETTINGS:
        trial = {"params": params, "status": "done"}
        left = None if budget_seconds is None else budget_seconds - (time.monotonic() - started)
        if trials and left is not None and slowest > left:  # the defaults are always fitted
            trial.update(status="skipped", note=f"the slowest fit so far took {slowest:.1f} s, {max(left, 0):.1f} s of the budget left")
        else:
            fit_started = time.monotonic()
            algorithm = SparkALS(SparkALS.Config(**params))
            algorithm._set_factors(*fit_spark_als(ratings, algorithm.config, *history.shape))
            algorithm.n_items_ = history.shape[1]
            trial["metrics"] = {key: round(value, 6) for key, value in evaluate(algorithm, kept, judged, (cut_off,)).items()
                                if key in shown_metrics}
            trial["seconds"] = round(time.monotonic() - fit_started, 2)
            slowest = max(slowest, trial["seconds"])
        trials.append(trial)
        if on_trial:
            on_trial(trial)
    ratings.unpersist()
    done = [t for t in trials if t["status"] == "done"]
    best = max(done, key=lambda t: t["metrics"][metric])  # the first (the defaults) on a tie
    shown = settings_text(best["params"]) if best["params"] else "the defaults"
    reason = f"{shown}: validation {metric} {best['metrics'][metric]:.4f}, the best of {len(done)} fitted"
    return SparkChoice(dict(best["params"]), metric, trials, validation, time.monotonic() - started, reason)
