"""The offline training pipeline: purchase files in, a published model folder out."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from recommender.algorithms import DEFAULT_ALGORITHM, create_algorithm
from recommender.artifacts import promote as promote_version
from recommender.artifacts import save_model
from recommender.catalog import Catalog, load_catalog
from recommender.evaluation.holdout import SplitSpec, evaluate_holdout, split_log
from recommender.events import forget_erased_customers, merge_stored_events
from recommender.interactions import Interactions
from recommender.model import Model
from recommender.purchases import PurchaseLog, load_purchases
from recommender.topn import compute_top_lists
from recommender.weights import DEFAULT_EVENT_WEIGHTS

# customers x items above which top lists are not precomputed (Gowalla is 1.2e9).
TOP_LIST_SCORE_LIMIT = 2e10


@dataclass
class TrainResult:
    path: Path
    model: Model
    seconds: float
    skipped: dict[str, int] = field(default_factory=dict)


def train_from_log(
    log: PurchaseLog,
    *,
    algorithm: str = DEFAULT_ALGORITHM,
    params: list[str] | dict | None = None,
    catalog_path=None,
    show_progress: bool = False,
    top_lists: int = 50,
) -> tuple[Model, float]:
    """Fit ``algorithm`` on an in-memory purchase log; returns the model and fit seconds.

    ``top_lists`` > 0 also caches each customer's best items, so the server answers
    customers whose history is unchanged without scoring.
    """
    interactions = Interactions.from_log(log)
    fitted = create_algorithm(algorithm, params)
    started = time.perf_counter()
    fitted.fit(interactions.matrix, show_progress=show_progress)
    seconds = time.perf_counter() - started
    catalog = load_catalog(catalog_path, interactions.items) if catalog_path else Catalog.empty(interactions.items)
    model = Model(fitted, interactions.customers, interactions.items, interactions.matrix, catalog)
    if top_lists > 0 and fitted.personalised:
        if interactions.shape[0] * interactions.shape[1] <= TOP_LIST_SCORE_LIMIT:
            with tqdm(total=len(model.customers), unit="customers", desc="top lists and reasons", disable=not show_progress,
                      file=sys.stderr, dynamic_ncols=True) as bar:
                model.top_lists = compute_top_lists(fitted, model.history, top_lists, progress=bar.update, workers=_blas_threads())
        else:
            # Scoring every customer against every item would cost as much as a batch
            # job; at this size the server scores live and batch jobs use `score`.
            print(f"note: {interactions.shape[0]} x {interactions.shape[1]} is too large to precompute top lists; skipped", file=sys.stderr)
    model.manifest["data"] = {
        "fingerprint": interactions.fingerprint(),
        "events": len(log),
        "customers": len(interactions.customers),
        "items": len(interactions.items),
        "interactions": interactions.nnz,
    }
    return model, seconds


def train(
    data_path,
    *,
    catalog_path=None,
    algorithm: str = DEFAULT_ALGORITHM,
    params: list[str] | dict | None = None,
    models_dir="models",
    promote: bool = False,
    on_bad_rows: str = "error",
    event_weights: dict[str, float] | None = None,
    show_progress: bool = False,
    evaluation: SplitSpec | None = None,
    ks: tuple[int, ...] = (10, 20),
    top_lists: int = 50,
    events_path=None,
) -> TrainResult:
    """Load, validate, fit, save (atomically) and optionally promote a model.

    With ``events_path``, the API's event store is read alongside the purchase file.
    With ``evaluation``, the same algorithm is first fitted on a held-out split and
    scored; the report (JSON + HTML) is published inside the model folder and the
    metrics in its manifest. The published model is then fitted on all the data.
    """
    started = time.perf_counter()
    log = load_purchases(data_path, event_weights=event_weights, on_bad_rows=on_bad_rows)
    events_through_id = erasures_through = erased = 0
    if events_path is not None:
        log, events_through_id = merge_stored_events(log, events_path, event_weights or DEFAULT_EVENT_WEIGHTS)
        # After the merge, so customers on the erasure list go whether the files or the store name them.
        log, erasures_through, erased = forget_erased_customers(log, events_path)
    extra_files, metrics = {}, None
    if evaluation is not None:
        result = evaluate_holdout(
            *split_log(log, evaluation),
            algorithm=algorithm,
            params=params,
            ks=list(ks),
            settings={"data": str(data_path), "split": vars(evaluation)},
        )
        extra_files, metrics = result.files(), result.metrics
    model, fit_seconds = train_from_log(
        log, algorithm=algorithm, params=params, catalog_path=catalog_path, show_progress=show_progress, top_lists=top_lists
    )
    data = dict(model.manifest["data"])
    data.update(
        source=str(data_path),
        catalog=str(catalog_path) if catalog_path else None,
        skipped_rows=log.skipped,
        event_store=str(events_path) if events_path else None,
        event_weights=dict(event_weights or DEFAULT_EVENT_WEIGHTS),
        # Serving folds in only events newer than this, so none is counted twice.
        events_through_id=events_through_id,
        # Serving hides the training history of customers erased after this entry of the list.
        erasures_through=erasures_through,
        erased_customers_left_out=erased,
    )
    path = save_model(
        model,
        models_dir,
        info={
            "data": data,
            "training_seconds": round(fit_seconds, 3),
            "pipeline_seconds": round(time.perf_counter() - started, 3),
            **({"metrics": metrics, "evaluation": vars(evaluation)} if metrics else {}),
        },
        extra_files=extra_files,
    )
    if promote:
        promote_version(models_dir, path.name)
    return TrainResult(path, model, fit_seconds, log.skipped)


def _blas_threads() -> int:
    """The BLAS thread count in force (the CLI's --threads): how many chunks to score at once."""
    from threadpoolctl import threadpool_info

    counts = [pool.get("num_threads", 1) for pool in threadpool_info() if pool.get("user_api") == "blas"]
    return max(counts, default=1)
