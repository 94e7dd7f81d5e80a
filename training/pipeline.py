"""The offline training pipeline: purchase files in, a published model folder out."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from recommender.algorithms import DEFAULT_ALGORITHM, create_algorithm
from recommender.algorithms.ease import DEFAULT_MEMORY_LIMIT_GB
from recommender.artifacts import promote as promote_version
from recommender.artifacts import save_model
from recommender.catalog import Catalog, catalog_from_purchases, load_catalog
from recommender.evaluation import EVALUATED_LISTS
from recommender.evaluation.holdout import SplitSpec, evaluate_holdout, split_log
from recommender.evaluation.report import render_choice_page
from recommender.events import forget_erased_customers, merge_stored_events, redacted
from recommender.interactions import Interactions
from recommender.model import Model
from recommender.parallel import blas_threads
from recommender.purchases import PurchaseLog, load_purchases
from recommender.selection import AUTO, DEFAULT_METRIC, Choice, choose_for_log
from recommender.store_format import StoreFormat
from recommender.topn import compute_top_lists
from recommender.vocabulary import IdVocabulary
from recommender.weights import DEFAULT_EVENT_WEIGHTS, HistoryWeighting

# customers x items above which top lists are not precomputed (Gowalla is 1.2e9).
TOP_LIST_SCORE_LIMIT = 2e10


@dataclass
class TrainResult:
    path: Path
    model: Model
    seconds: float
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # how the loader read the file (float ids)
    choice: Choice | None = None


@dataclass
class ChoiceSettings:
    """How ``--algorithm auto`` chooses: budget (None: grows with the data), metric, memory."""

    budget_seconds: float | None = None
    metric: str = DEFAULT_METRIC
    memory_limit_gb: float = DEFAULT_MEMORY_LIMIT_GB
    seed: int = 42
    weighting: HistoryWeighting | None = None  # None: chosen with the model; given: every trial uses it


def choose_model(log: PurchaseLog, settings: ChoiceSettings, *, show_progress: bool = False) -> Choice:
    """The automatic choice on ``log``, with its budget printed and a progress bar (stderr)
    showing the seconds spent and the best validation figure so far."""
    bar = None

    def start(budget: float, validation: dict) -> None:
        nonlocal bar
        given = "given" if settings.budget_seconds is not None else "default for this data; --budget to change"
        print(
            f"choosing a model: budget {budget:.0f} s ({given}); validation: {validation['kind']} split, "
            f"{validation['held_out_purchases']} purchases of {validation['customers']} customers held out; metric {settings.metric}",
            file=sys.stderr,
        )
        bar = tqdm(total=round(budget), unit="s", desc="choosing a model", disable=not show_progress, file=sys.stderr,
                   dynamic_ncols=True, bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total} s {postfix}")
        bar.started = time.monotonic()

    def tick() -> None:
        if bar is not None:
            bar.n = min(bar.total, time.monotonic() - bar.started)
            bar.refresh()

    def trial_done(trial, best) -> None:
        if bar is not None:
            if best is not None:
                bar.set_postfix_str(f"best {best.algorithm} {settings.metric} {best.metrics[settings.metric]:.4f}", refresh=False)
            tick()

    try:
        return choose_for_log(
            log, budget_seconds=settings.budget_seconds, metric=settings.metric, memory_limit_gb=settings.memory_limit_gb,
            seed=settings.seed, threads=blas_threads(), weighting=settings.weighting, on_start=start, on_trial=trial_done, waiting=tick,
        )
    finally:
        if bar is not None:
            bar.close()


def train_from_log(
    log: PurchaseLog,
    *,
    algorithm: str = DEFAULT_ALGORITHM,
    params: list[str] | dict | None = None,
    catalog_path=None,
    show_progress: bool = False,
    top_lists: int = 50,
    weighting: HistoryWeighting | None = None,
    catalog_source: Callable[[IdVocabulary], Catalog] | None = None,
    start_state: dict | None = None,
) -> tuple[Model, float]:
    """Fit ``algorithm`` on an in-memory purchase log; returns the model and fit seconds.

    ``weighting`` says how history counts (recency, repeats; default: summed weights).
    ``top_lists`` > 0 also caches each customer's best items, so the server answers
    customers whose history is unchanged without scoring. The catalog comes from
    ``catalog_path``, else from ``catalog_source`` (given the model's items), else none.
    ``start_state``: where the fit may start (an automatic choice's winning trial on this
    log or a subset of it: the same vocabularies, so the same item order).
    """
    weighting = weighting or HistoryWeighting()
    interactions = Interactions.from_log(log, weighting)
    fitted = create_algorithm(algorithm, params)
    if start_state:
        fitted.start_from(start_state)
    started = time.perf_counter()
    fitted.fit(interactions.matrix, show_progress=show_progress)
    seconds = time.perf_counter() - started
    if catalog_path:
        catalog = load_catalog(catalog_path, interactions.items, notes=log.notes)
    else:
        catalog = catalog_source(interactions.items) if catalog_source else Catalog.empty(interactions.items)
    model = Model(fitted, interactions.customers, interactions.items, interactions.matrix, catalog, weighting=weighting, browsed=interactions.browsed)
    if top_lists > 0 and fitted.personalised:
        if interactions.shape[0] * interactions.shape[1] <= TOP_LIST_SCORE_LIMIT:
            with tqdm(total=len(model.customers), unit="customers", desc="top lists and reasons", disable=not show_progress,
                      file=sys.stderr, dynamic_ncols=True) as bar:
                model.top_lists = compute_top_lists(fitted, model.history, top_lists, progress=bar.update, workers=blas_threads())
        else:
            # Scoring every customer against every item would cost as much as a batch
            # job; at this size the server scores live and batch jobs use `score`.
            print(f"note: {interactions.shape[0]} x {interactions.shape[1]} is too large to precompute top lists; skipped", file=sys.stderr)
    model.manifest["data"] = {
        "fingerprint": interactions.fingerprint(),
        "events": len(log),
        "returns": log.returns,
        "customers": len(interactions.customers),
        "items": len(interactions.items),
        "interactions": interactions.nnz,
    }
    model.manifest["history_weighting"] = weighting.record(None if log.timestamp is None or not len(log) else log.timestamp.max())
    return model, seconds


def train(
    data_path,
    *,
    catalog_path=None,
    algorithm: str = AUTO,
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
    choice_settings: ChoiceSettings | None = None,
    store_format: StoreFormat | None = None,
    weighting: HistoryWeighting | None = None,
) -> TrainResult:
    """Load, validate, fit, save (atomically) and optionally promote a model.

    ``store_format`` reads a store's export under its own column names (and builds the
    catalog from it when it maps catalog fields and no ``catalog_path`` is given);
    ``weighting`` says how history counts, for the evaluation and the published model.
    With ``events_path``, the API's event store is read alongside the purchase file.
    With ``algorithm="auto"`` the algorithm and its settings are chosen first
    (:func:`choose_model`); the choice is recorded in the manifest and ``choice.html``.
    With ``evaluation``, the same algorithm is first fitted on a held-out split and
    scored (with auto, the choice is made on that split's training part only, so the
    test purchases never influence it); the report (JSON + HTML) is published inside
    the model folder and the metrics in its manifest. The published model is then
    fitted on all the data.
    """
    started = time.perf_counter()
    store_format = store_format or StoreFormat()
    weighting = weighting or HistoryWeighting()
    log = load_purchases(data_path, event_weights=event_weights, on_bad_rows=on_bad_rows, store_format=store_format)
    events_through_id = erasures_through = erased = 0
    if events_path is not None:
        log, events_through_id = merge_stored_events(log, events_path, event_weights or DEFAULT_EVENT_WEIGHTS)
        # After the merge, so customers on the erasure list go whether the files or the store name them.
        log, erasures_through, erased = forget_erased_customers(log, events_path)
    extra_files, metrics, choice, repeats = {}, None, None, None
    evaluation_split = split_log(log, evaluation) if evaluation is not None else None
    if algorithm == AUTO:
        choice = choose_model(evaluation_split[0] if evaluation_split else log, choice_settings or ChoiceSettings(), show_progress=show_progress)
        algorithm, params, weighting = choice.algorithm, choice.params, choice.weighting
    if evaluation_split is not None:
        result = evaluate_holdout(
            *evaluation_split,
            algorithm=algorithm,
            params=params,
            ks=list(ks),
            settings={"data": str(data_path), "split": vars(evaluation)},
            choice=choice.record() if choice else None,
            weighting=weighting,
            start_state=choice.start_state if choice else None,
        )
        extra_files.update(result.files())
        metrics, repeats = result.metrics, result.report.get("repeat_purchases")
    catalog_source = None
    if store_format.catalog_in_data and not catalog_path:
        catalog_source = lambda items: catalog_from_purchases(data_path, items, store_format, on_bad_rows=on_bad_rows)  # noqa: E731
    model, fit_seconds = train_from_log(
        log, algorithm=algorithm, params=params, catalog_path=catalog_path, show_progress=show_progress, top_lists=top_lists,
        weighting=weighting, catalog_source=catalog_source, start_state=choice.start_state if choice else None,
    )
    # Recorded after the refit: whether it started from the winning trial's state (graph-filter's basis).
    chosen = {**choice.record(), "refit_started_from_trial": model.algorithm.warm_started_} if choice else None
    if chosen:
        extra_files["choice.html"] = render_choice_page(chosen).encode()
    data = dict(model.manifest["data"])
    data.update(
        source=str(data_path),
        catalog=str(catalog_path) if catalog_path else (str(data_path) if catalog_source else None),
        store_format=store_format.to_dict(),
        skipped_rows=log.skipped,
        notes=log.notes,
        event_store=redacted(events_path) if events_path else None,  # never a database password
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
            "history_weighting": model.manifest["history_weighting"],
            "training_seconds": round(fit_seconds, 3),
            "pipeline_seconds": round(time.perf_counter() - started, 3),
            **({"choice": chosen} if chosen else {}),
            **({"metrics": metrics, "evaluation": {**vars(evaluation), "lists": EVALUATED_LISTS}, "repeat_purchases": repeats} if metrics else {}),
        },
        extra_files=extra_files,
    )
    if promote:
        promote_version(models_dir, path.name)
    return TrainResult(path, model, fit_seconds, log.skipped, log.notes, choice)
