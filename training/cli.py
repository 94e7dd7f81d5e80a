"""The ``recommender`` command line: demo data, training, batch scoring, model management.

Exit codes: 0 success, 1 bad data or a damaged model (one clear line on stderr),
2 usage errors (argparse's convention).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tqdm import tqdm

from recommender.algorithms import ALGORITHMS, DEFAULT_ALGORITHM
from recommender.errors import RecommenderError

DEFAULT_MODELS_DIR = os.environ.get("RECOMMENDER_MODELS_DIR", "models")


class UsageError(Exception):
    """A command line that cannot be carried out as written (exit code 2)."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    from threadpoolctl import threadpool_limits

    # BLAS threads are set explicitly so runs are repeatable and never oversubscribed.
    with threadpool_limits(args.threads, "blas"):
        try:
            return args.handler(args) or 0
        except UsageError as error:
            print(f"recommender {args.command}: error: {error}", file=sys.stderr)
            return 2
        except (RecommenderError, ValueError, OSError, ImportError) as error:
            print(f"recommender {args.command}: error: {error}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted; nothing was published", file=sys.stderr)
            return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recommender", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="BLAS threads (default: all cores)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo-data", help="write a synthetic store (purchases + catalog)")
    demo.add_argument("--out", required=True, type=Path, help="folder for purchases.<fmt> and catalog.<fmt>")
    demo.add_argument("--customers", type=int, default=5000)
    demo.add_argument("--items", type=int, default=2000)
    demo.add_argument("--purchases", type=int, default=150_000)
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--format", choices=("csv", "parquet"), default="csv")
    demo.set_defaults(handler=_demo_data)

    train = sub.add_parser("train", help="train a model and publish it under --models-dir")
    train.add_argument("--data", required=True, type=Path, help="purchase history (.csv or .parquet)")
    train.add_argument("--catalog", type=Path, help="item catalog with item_id,name,category")
    train.add_argument("--algorithm", choices=sorted(ALGORITHMS), help=f"default: {DEFAULT_ALGORITHM}; spark-als with --engine spark")
    train.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="hyper-parameter (repeatable)")
    train.add_argument("--models-dir", type=Path, default=Path(DEFAULT_MODELS_DIR))
    train.add_argument("--promote", action="store_true", help="make the new model current")
    train.add_argument("--on-bad-rows", choices=("error", "skip"), default="error")
    train.add_argument("--event-weight", action="append", default=[], metavar="TYPE=WEIGHT", help="weight of an event type (repeatable; replaces the defaults)")
    _add_engine_options(train)
    train.add_argument("--data-format", choices=("csv", "parquet"), help="with --engine spark: format of --data (default: from its suffix, else parquet)")
    train.set_defaults(handler=_train)

    score = sub.add_parser("score", help="batch top-N for every (or the listed) customer")
    score.add_argument("--model", type=Path, default=Path(DEFAULT_MODELS_DIR) / "current")
    score.add_argument("--n", type=int, default=20)
    score.add_argument("--out", required=True, type=Path, help="output .csv, .parquet or .jsonl")
    score.add_argument("--customers", type=Path, help="file of customer ids, one per line (a header 'customer_id' is skipped)")
    purchased = score.add_mutually_exclusive_group()
    purchased.add_argument("--exclude-purchased", dest="exclude_purchased", action="store_true", default=True, help="never recommend already purchased items (the default)")
    purchased.add_argument("--include-purchased", dest="exclude_purchased", action="store_false", help="allow already purchased items")
    score.add_argument("--category", metavar="NAME", help="recommend only items of this catalog category")
    score.add_argument("--include", type=Path, metavar="FILE", help="candidate items: file of item ids, one per line (a header 'item_id' is skipped)")
    _add_engine_options(score)
    score.set_defaults(handler=_score)

    recommend = sub.add_parser("recommend", help="print recommendations for one customer")
    recommend.add_argument("customer_id")
    recommend.add_argument("--model", type=Path, default=Path(DEFAULT_MODELS_DIR) / "current")
    recommend.add_argument("--n", type=int, default=10)
    recommend.add_argument("--json", action="store_true", help="print JSON instead of a table")
    recommend.set_defaults(handler=_recommend)

    convert = sub.add_parser("convert-lightgcn", help="turn a LightGCN 'user item item ...' file into a purchases CSV")
    convert.add_argument("input", type=Path)
    convert.add_argument("--out", required=True, type=Path)
    convert.set_defaults(handler=_convert_lightgcn)

    models = sub.add_parser("models", help="list, promote or roll back published models")
    models.add_argument("--models-dir", type=Path, default=Path(DEFAULT_MODELS_DIR))
    actions = models.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="every published model, current one marked")
    promote = actions.add_parser("promote", help="make VERSION the current model")
    promote.add_argument("version")
    actions.add_parser("rollback", help="go back to the previously promoted model")
    models.set_defaults(handler=_models)
    return parser


def _add_engine_options(command) -> None:
    command.add_argument("--engine", choices=("local", "spark"), default="local", help="run on this machine (default) or as an Apache Spark job")
    command.add_argument("--spark-master", metavar="URL", help="with --engine spark: local[N], spark://host:7077, yarn, k8s://... (default: spark-submit's, else local[*])")


def _progress(args, total: int, unit: str, desc: str):
    return tqdm(total=total, unit=unit, desc=desc, disable=args.quiet, file=sys.stderr, dynamic_ncols=True)


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise UsageError(f"--{name} must be at least 1, not {value}")


def _demo_data(args) -> int:
    from recommender.demo import generate_store, write_store

    for name in ("customers", "items", "purchases"):
        _check_positive(name, getattr(args, name))
    store = generate_store(args.customers, args.items, args.purchases, seed=args.seed)
    paths = write_store(store, args.out, args.format)
    print(f"wrote {store.purchases.num_rows} purchases by {args.customers} customers of {args.items} items", file=sys.stderr)
    for path in paths.values():
        print(path)
    return 0


def _train(args) -> int:
    from training.pipeline import train

    weights = None
    if args.event_weight:
        weights = {}
        for pair in args.event_weight:
            kind, sep, value = pair.partition("=")
            try:
                weights[kind] = float(value)
            except ValueError:
                raise UsageError(f"--event-weight {pair!r} must look like TYPE=NUMBER") from None
            if not sep or not kind:
                raise UsageError(f"--event-weight {pair!r} must look like TYPE=NUMBER")
    if args.engine == "spark":
        if args.algorithm not in (None, "spark-als"):
            raise UsageError(f"--engine spark trains Spark MLlib ALS (spark-als), not {args.algorithm}")
        args.algorithm = "spark-als"
    args.algorithm = args.algorithm or DEFAULT_ALGORITHM
    try:
        from recommender.algorithms import parse_params

        parse_params(args.algorithm, args.param)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.engine == "spark":
        from training.cli_spark import train_command

        return train_command(args, weights)
    result = train(
        args.data,
        catalog_path=args.catalog,
        algorithm=args.algorithm,
        params=args.param,
        models_dir=args.models_dir,
        promote=args.promote,
        on_bad_rows=args.on_bad_rows,
        event_weights=weights,
        show_progress=not args.quiet,
    )
    from recommender.purchases import describe_skipped

    data = result.model.manifest["data"]
    print(
        f"trained {args.algorithm} on {data['events']} events ({data['customers']} customers, {data['items']} items) "
        f"in {result.seconds:.1f}s; {describe_skipped(result.skipped)}" + ("; promoted to current" if args.promote else ""),
        file=sys.stderr,
    )
    print(result.path)
    return 0


def _load(path: Path):
    from recommender.artifacts import load_model

    return load_model(path)


def _score(args) -> int:
    from training.batch import output_format, score_all

    _check_positive("n", args.n)
    try:
        output_format(args.out)
    except ValueError as error:
        raise UsageError(str(error)) from None
    model = _load(args.model)
    customers = _read_id_list(args.customers, "customer_id") if args.customers else None
    include = _read_id_list(args.include, "item_id") if args.include else None
    if include is not None:
        unknown = int((model.items.lookup(include) < 0).sum())
        if unknown == len(include):
            raise UsageError(f"none of the {len(include)} items in {args.include} is known to the model")
        if unknown:
            print(f"warning: {unknown} of {len(include)} items in {args.include} are unknown to the model; they are ignored", file=sys.stderr)
    if args.category and not model.catalog.category_mask(args.category).any():
        known = sorted(set(model.catalog.categories.tolist()) - {""})
        raise UsageError(f"no item has category {args.category!r}; known categories: {', '.join(known) or 'none (train with --catalog)'}")
    if args.engine == "spark":
        from training.cli_spark import score_command

        return score_command(args, customers, include)
    total = len(customers) if customers is not None else len(model.customers)
    with _progress(args, total, "customers", "scoring") as bar:
        manifest = score_all(
            model, args.out, n=args.n, customers=customers, exclude_purchased=args.exclude_purchased,
            include=include, category=args.category, threads=args.threads, progress=bar.update,
        )
    print(f"wrote {manifest['rows']} rows for {manifest['customers']} customers in {manifest['seconds']:.1f}s", file=sys.stderr)
    print(args.out)
    return 0


def _read_id_list(path: Path, header: str) -> list[str]:
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except FileNotFoundError:
        raise UsageError(f"id list not found: {path}") from None
    ids = [line for line in lines if line]
    if ids and ids[0] == header:
        ids = ids[1:]
    return list(dict.fromkeys(ids))


def _recommend(args) -> int:
    _check_positive("n", args.n)
    model = _load(args.model)
    result = model.recommend(args.customer_id, args.n)
    if args.json:
        print(json.dumps({"customer_id": result.customer_id, "source": result.source, "model_version": model.version, "items": [r.to_dict() for r in result.items]}, indent=2))
        return 0
    bought = model.purchased(args.customer_id)
    print(f"customer {args.customer_id} — {len(bought)} past purchases — {result.source} recommendations from {model.version}")
    rows = [(str(rank), r.name, r.category, f"{r.score:.3f}", r.reason) for rank, r in enumerate(result.items, 1)]
    print(_table(("#", "item", "category", "score", "why"), rows))
    return 0


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(v)) for v in column) for column in zip(header, *rows)]
    line = lambda values: "  ".join(str(v).ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _convert_lightgcn(args) -> int:
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    from recommender.evaluation.splits import read_lightgcn_pairs

    pairs = read_lightgcn_pairs(args.input)
    table = pa.table({"customer_id": [u for u, _ in pairs], "item_id": [i for _, i in pairs]})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.out.with_name(f".{args.out.name}.tmp-{os.getpid()}")
    pa_csv.write_csv(table, temporary)
    os.replace(temporary, args.out)
    print(f"wrote {len(pairs)} purchases", file=sys.stderr)
    print(args.out)
    return 0


def _models(args) -> int:
    from recommender import artifacts

    if args.action == "promote":
        path = artifacts.promote(args.models_dir, args.version)
        print(f"current -> {path.name}")
    elif args.action == "rollback":
        path = artifacts.rollback(args.models_dir)
        print(f"current -> {path.name}")
    else:
        current = artifacts.current_version(args.models_dir)
        rows = []
        for manifest in artifacts.list_models(args.models_dir):
            metrics = manifest.get("metrics") or {}
            shown = ", ".join(f"{k}={v:.4f}" for k, v in list(metrics.items())[:2] if isinstance(v, (int, float)))
            rows.append(("*" if manifest["version"] == current else "", manifest["version"], manifest["algorithm"], str(manifest["customers"]), str(manifest["items"]), f"{manifest.get('training_seconds', 0):.1f}s", shown))
        if not rows:
            print(f"no models in {args.models_dir}")
        else:
            print(_table(("", "version", "algorithm", "customers", "items", "training", "metrics"), rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
