"""Handlers of ``recommender forget`` and ``recommender experiments report`` (the parser
lives in :mod:`training.cli`): closing the loop between what was shown and what happened."""

from __future__ import annotations

import sys
from pathlib import Path

from recommender.files import write_bytes_atomic

from .commands import DEFAULT_MODELS_DIR, UsageError, check_customer_id, check_output, existing_event_store


def forget(args) -> int:
    """Erase one customer from the event store; with --rewrite-models, from the published models too."""
    from recommender.events import open_event_store, read_erasures, redacted
    from recommender.forgetting import holding_erased, rewrite_without

    check_customer_id(args.customer_id)
    store = open_event_store(existing_event_store(args.events))
    try:
        erasure = store.forget(args.customer_id)
    finally:
        store.close()  # PostgreSQL's pool, closed here rather than by the garbage collector on its own thread
    print(
        f"forgot customer {args.customer_id}: {erasure.events_deleted} stored events and {erasure.answers_deleted} logged answers deleted; "
        f"erasure list entry {erasure.erasure_id} in {redacted(args.events)} (training leaves them out from now on)",
        file=sys.stderr,
    )
    keys, through = read_erasures(args.events)
    if args.rewrite_models:
        rewritten = rewrite_without(args.models_dir, keys, through)
        for model in rewritten:
            print(f"rewrote {model.version}: {model.customers_removed} erased customers removed", file=sys.stderr)
        if not rewritten:
            print(f"no published model in {args.models_dir} holds an erased customer", file=sys.stderr)
    else:
        holding = holding_erased(args.models_dir, keys)
        if holding:
            print(
                f"still in published models {', '.join(holding)}: serving already ignores their history there; "
                "--rewrite-models removes them from the files now, the next training leaves them out",
                file=sys.stderr,
            )
    return 0


def experiments_report(args) -> int:
    """Figures of every experiment in the store's answer log, as an HTML page."""
    from recommender.events import open_event_store, redacted
    from recommender.experiments import ExperimentConfigError, load_experiments, read_figures
    from recommender.experiments.figures import catalog_prices, logged_experiments
    from recommender.experiments.report import render_report

    existing_event_store(args.events)
    check_output("--out", args.out)
    if not args.window_hours > 0:
        raise UsageError(f"--window-hours must be above 0, not {args.window_hours}")
    if args.points < 2:
        raise UsageError(f"--points must be at least 2 (a plot over time needs two), not {args.points}")
    if args.model is not None and not (Path(args.model) / "manifest.json").is_file():  # given, so meant: say it is not there
        raise UsageError(f"--model {args.model}: no model folder here (revenue needs its catalog's prices)")
    store = open_event_store(args.events)
    answers = store.answers()
    if args.experiments is not None:
        try:
            experiments = load_experiments(args.experiments)
        except ExperimentConfigError as error:
            raise UsageError(str(error)) from None
    else:
        experiments = logged_experiments(answers)
    prices = None
    model_path = args.model if args.model is not None else Path(DEFAULT_MODELS_DIR) / "current"
    if (model_path / "manifest.json").is_file():
        from recommender.artifacts import load_model

        model = load_model(model_path)
        prices = catalog_prices(model.items.ids, getattr(model.catalog, "prices", None))
        served = sorted({a.model_version.removeprefix("popular+") for a in answers if a.experiment is not None})
        if served and model.version not in served:  # another store's catalog prices nothing: revenue would read 0
            print(f"warning: revenue is priced from model {model.version} ({model_path}), which served none of the experiments' "
                  f"answers (served by {', '.join(served[:3])}{' ...' if len(served) > 3 else ''}): give --model <that model's folder>",
                  file=sys.stderr)
    figures = read_figures(store, experiments, window=int(args.window_hours * 3600), prices=prices, series_points=args.points, answers=answers)
    write_bytes_atomic(args.out, render_report(figures, title="Experiments report", source=redacted(args.events)).encode())
    for found in figures.values():
        rates = ", ".join(f"{v['name']} ctr {_rate(v['ctr'])}" for v in found["variants"])
        print(f"{found['name']}: {rates}; verdict {found['verdict']['text']}", file=sys.stderr)
    print(args.out)
    return 0


def _rate(value) -> str:
    return "-" if value is None else f"{value:.4f}"
