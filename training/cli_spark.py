"""The ``--engine spark`` halves of ``recommender train`` and ``recommender score``."""

from __future__ import annotations

import sys

from training.batch_writers import output_format


def train_command(args, event_weights: dict[str, float] | None, params: dict, store_format=None, weighting=None, events_path=None,
                  choose: bool = False) -> int:
    """Train spark-als as a Spark job (``choose``: its settings chosen on validation first);
    print the model folder last, like local training."""
    from recommender.selection.trials import settings_text
    from training.spark_jobs import train_with_spark

    def shown(trial: dict) -> None:
        settings = settings_text(trial["params"])
        figures = (", ".join(f"{key} {value:.4f}" for key, value in trial["metrics"].items()) + f" in {trial['seconds']:.1f}s"
                   if trial["status"] == "done" else f"{trial['status']}: {trial.get('note', '')}")
        print(f"spark-als {settings}: {figures}", file=sys.stderr, flush=True)

    path, model, seconds = train_with_spark(
        str(args.data), params=params, catalog_path=args.catalog, models_dir=args.models_dir, promote=args.promote,
        on_bad_rows=args.on_bad_rows, event_weights=event_weights, data_format=args.data_format, master=args.spark_master,
        store_format=store_format, weighting=weighting, events_path=events_path,
        choose=choose, metric=args.metric, budget_seconds=args.budget, seed=args.seed, on_trial=None if args.quiet else shown,
    )
    from recommender.purchases import describe_skipped

    data = model.manifest["data"]
    if choose:
        choice = model.manifest["choice"]
        print(f"chose spark-als {choice['reason']} (validation: {choice['validation']['customers']} customers' held-out purchases)",
              file=sys.stderr)
    print(
        f"trained spark-als with Spark on {data['events']} events ({data['customers']} customers, {data['items']} items) "
        f"in {seconds:.1f}s; {model.weighting.describe()}; {describe_skipped(data['skipped_rows'])}"
        + ("; promoted to current" if args.promote else ""),
        file=sys.stderr,
    )
    print(path)
    return 0


def score_command(args, customers: list[str] | None, include: list[str] | None) -> int:
    """Batch-score as a Spark job writing Parquet (a folder of part files)."""
    from training.spark_jobs import score_with_spark

    if output_format(args.out) != "parquet":
        print("recommender score: error: --engine spark writes Parquet: name --out with a .parquet suffix", file=sys.stderr)
        return 2
    manifest = score_with_spark(
        args.model, str(args.out), n=args.n, customers=customers, exclude_purchased=args.exclude_purchased,
        include=include, category=args.category, master=args.spark_master,
    )
    print(f"wrote {manifest['rows']} rows for {manifest['customers']} customers with Spark in {manifest['seconds']:.1f}s", file=sys.stderr)
    print(args.out)
    return 0
