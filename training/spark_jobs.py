"""``--engine spark``: training and batch scoring as Apache Spark jobs.

Training reads purchases from any path Spark reads (local, HDFS, S3; Parquet or
CSV), aggregates weights with the library's formula, indexes the string ids, fits
Spark MLlib implicit ALS and exports a ``spark-als`` model folder in the usual
artifact format, so ``recommender score``, ``recommend`` and the server use it
unchanged.

Scoring ships a model folder to the executors (``SparkContext.addFile``) and runs
the top-N path of the API and ``recommender score`` (:func:`recommender.topn.rank_rows`:
scores, purchase exclusion, filters, top-N, the popular top-up; popular items for
customers the model does not know) inside ``mapInArrow`` tasks, one block of customers
at a time; the result is written by Spark as Parquet (customer_id, item_id, rank,
score). Same model, same answers as ``recommender score``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommender.algorithms import parse_params
from recommender.algorithms.spark_als import SparkALS, fit_spark_als, spark_ratings
from recommender.artifacts import load_model, save_model
from recommender.artifacts import promote as promote_version
from recommender.catalog import CATALOG_COLUMNS, Catalog, load_catalog
from recommender.events import redacted
from recommender.interactions import Interactions
from recommender.model import Model
from recommender.spark_support import (
    catalog_from_purchases,
    erasure_keys,
    index_ids,
    purchase_weights,
    read_purchases,
    spark_session,
    stored_events,
)
from recommender.store_format import StoreFormat
from recommender.topn import candidate_mask, history_rows, rank_rows
from recommender.vocabulary import IdVocabulary
from recommender.weights import DEFAULT_EVENT_WEIGHTS, HistoryWeighting
from training.batch_writers import ranked_table
from training.spark_choice import choose_settings

CUSTOMERS_PER_TASK_BATCH = 1024


def train_with_spark(
    data_path: str,
    *,
    params: list[str] | dict | None = None,
    catalog_path=None,
    models_dir="models",
    promote: bool = False,
    on_bad_rows: str = "error",
    event_weights: dict[str, float] | None = None,
    data_format: str | None = None,
    master: str | None = None,
    store_format: StoreFormat | None = None,
    weighting: HistoryWeighting | None = None,
    events_path=None,
    choose: bool = False,
    metric: str = "ndcg@20",
    budget_seconds: float | None = None,
    seed: int = 42,
    on_trial=None,
) -> tuple[Path, Model, float]:
    """Train Spark implicit ALS from ``data_path``; save (and promote) the model folder.

    ``store_format`` maps the file's own columns and its returns and guest rows, as for
    local training; the catalog comes from ``catalog_path``, else from the purchase lines
    when the mapping names their name, category or price columns. ``weighting`` says how history counts (recency,
    repeats), as for local training. With ``events_path``, the API's event store is read
    alongside the purchase file and its erasure list honoured, as local training does.
    ``choose``: the settings are chosen on a validation split first (:mod:`training.spark_choice`,
    ``metric``, ``seed``, ``budget_seconds``, ``on_trial(trial)``; recorded in the manifest's ``choice``)
    instead of ``params``. Returns the folder, the model and the final fit's seconds.
    """
    started = time.perf_counter()
    store_format = store_format or StoreFormat()
    weighting = weighting or HistoryWeighting()
    spark = spark_session(master)
    algorithm = SparkALS(SparkALS.Config(**parse_params(SparkALS.name, params or {})))
    algorithm.validate_config()
    frame = read_purchases(spark, data_path, data_format, store_format)
    stored, erased, events_through_id, erasures_through = None, None, 0, 0
    if events_path is not None:
        stored, events_through_id = stored_events(spark, events_path, event_weights)
        erased, erasures_through = erasure_keys(spark, events_path)
    weighed = purchase_weights(frame, event_weights, on_bad_rows, path=data_path, store_format=store_format,
                               weighting=weighting, stored=stored, erased=erased)
    indexed, customer_ids, item_ids = index_ids(weighed.frame)
    indexed = indexed.cache()
    # The artifact carries the training history (for exclusion and fold-in): one
    # (customer, item, weight) triple per interaction, collected through Arrow.
    history_table = indexed.toArrow()
    history = sp.csr_matrix(
        (
            history_table.column("weight").to_numpy().astype(np.float32),
            (history_table.column("customer").to_numpy(), history_table.column("item").to_numpy()),
        ),
        shape=(len(customer_ids), len(item_ids)),
        dtype=np.float32,
    )
    history.sum_duplicates()
    history.sort_indices()
    choice = None
    if choose:
        choice = choose_settings(indexed, history, metric=metric, seed=seed, budget_seconds=budget_seconds, on_trial=on_trial)
        algorithm = SparkALS(SparkALS.Config(**choice.params))
    fit_started = time.perf_counter()
    algorithm._set_factors(*fit_spark_als(spark_ratings(indexed), algorithm.config, len(customer_ids), len(item_ids)))
    fit_seconds = time.perf_counter() - fit_started
    algorithm.n_items_ = len(item_ids)
    customers, items = IdVocabulary(customer_ids), IdVocabulary(item_ids)
    if catalog_path:
        notes: list[str] = []
        catalog = load_catalog(catalog_path, items, notes=notes)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
    elif store_format.catalog_in_data:  # names and prices on the purchase lines, as the UCI log has them
        catalog = catalog_from_purchases(read_purchases(spark, data_path, data_format, store_format, CATALOG_COLUMNS), items, data_path)
    else:
        catalog = Catalog.empty(items)
    model = Model(algorithm, customers, items, history, catalog, weighting=weighting)
    data = {
        "fingerprint": Interactions(customers, items, history).fingerprint(),
        "events": weighed.events,  # the rows kept, as local training counts them
        "customers": len(customers),
        "items": len(items),
        "interactions": int(history.nnz),
        "source": str(data_path),
        "catalog": str(catalog_path) if catalog_path else (str(data_path) if store_format.catalog_in_data else None),
        "store_format": store_format.to_dict(),
        "skipped_rows": {reason: int(count) for reason, count in weighed.skipped.items() if count},
        # As local training records them: serving folds in only newer events, and honours newer erasures.
        "event_store": redacted(events_path) if events_path else None,
        "event_weights": dict(event_weights or DEFAULT_EVENT_WEIGHTS),
        "events_through_id": events_through_id,
        "erasures_through": erasures_through,
        "erased_customers_left_out": weighed.erased,
    }
    info = {
        "data": data,
        "history_weighting": weighting.record(weighed.newest),
        "engine": {"name": "spark", "master": spark.sparkContext.master, "spark_version": spark.version},
        "training_seconds": round(fit_seconds, 3),
        "pipeline_seconds": round(time.perf_counter() - started, 3),
        **({"choice": choice.record()} if choice else {}),
    }
    path = save_model(model, models_dir, info=info)
    if promote:
        promote_version(models_dir, path.name)
    return path, model, fit_seconds


def score_with_spark(
    model_path,
    out_path: str,
    *,
    n: int = 20,
    customers: Sequence[str] | None = None,
    exclude_purchased: bool = True,
    include: Sequence[str] | None = None,
    category: str | None = None,
    master: str | None = None,
    partitions: int | None = None,
) -> dict:
    """Top-``n`` for every (or each listed, known) customer, written by Spark as Parquet."""
    import pyarrow as pa
    from pyspark import SparkFiles

    started = time.perf_counter()
    model_path = Path(model_path).resolve()
    model = load_model(model_path)  # verifies checksums once, on the driver
    spark = spark_session(master)
    spark.sparkContext.addFile(str(model_path), recursive=True)
    folder_name = model_path.name
    allowed = candidate_mask(model.items, model.catalog, include=include, category=category)
    if customers is None:
        listed = model.customers.ids
        rows = np.arange(len(model.customers), dtype=np.int64)
    else:
        listed = np.asarray(customers, dtype=str)
        rows = model.customers.lookup(customers)
    partitions = partitions or max(1, spark.sparkContext.defaultParallelism)
    frame = spark.createDataFrame(pa.table({"customer": rows, "customer_id": pa.array(listed, pa.string())}))
    frame = frame.repartitionByRange(partitions, "customer")
    schema = "customer_id string, item_id string, rank int, score float, source string"

    def score_partition(batches):
        from recommender.artifacts import load_model as load_on_executor

        local = load_on_executor(SparkFiles.get(folder_name), verify=False)
        item_ids = pa.array(local.items.ids, pa.string())
        for batch in batches:
            indices_in_batch = batch.column(0).to_numpy()
            ids_in_batch = np.asarray(batch.column(1).to_pylist(), dtype=str)
            order = np.argsort(indices_in_batch, kind="stable")
            for start in range(0, len(order), CUSTOMERS_PER_TASK_BATCH):
                chunk = order[start : start + CUSTOMERS_PER_TASK_BATCH]
                chunk_customers = indices_in_batch[chunk]
                ranked = rank_rows(
                    local.algorithm, local.popular, history_rows(local.history, chunk_customers), chunk_customers, n,
                    allowed=allowed, exclude_purchased=exclude_purchased,
                )
                yield from ranked_table(ranked, pa.array(ids_in_batch[chunk], pa.string()), item_ids)[0].to_batches()

    scored = frame.mapInArrow(score_partition, schema)
    scored.write.mode("overwrite").parquet(str(out_path))
    manifest = {
        "model_version": model.version,
        "output": str(out_path),
        "format": "parquet",
        "engine": "spark",
        "master": spark.sparkContext.master,
        "customers": int(len(rows)),
        "customers_unknown_to_model": int((rows < 0).sum()),
        "rows": int(spark.read.parquet(str(out_path)).count()),
        "n": n,
        "exclude_purchased": exclude_purchased,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if "://" not in str(out_path):
        Path(str(out_path) + ".manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
