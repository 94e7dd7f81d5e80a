"""Handlers of the ``recommender`` subcommands (the parser lives in :mod:`training.cli`)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from tqdm import tqdm

from recommender.errors import EmptySplitError, NoKnownItemsError, UnknownCategoryError
from recommender.files import write_bytes_atomic, write_json_atomic
from recommender.parallel import blas_threads
from recommender.weights import PURCHASE, check_event_weights

DEFAULT_MODELS_DIR = os.environ.get("RECOMMENDER_MODELS_DIR", "models")
SEARCH_SPACES = Path(__file__).parent / "search_spaces"
# The checkout (make installs it editable): `make train ALGO=NAME` passes its tuned/NAME.json
# as --params-file when the file is there, and no other.
PROJECT = Path(__file__).resolve().parent.parent


class UsageError(Exception):
    """A command line that cannot be carried out as written (exit code 2)."""


def _progress(args, total: int, unit: str, desc: str):
    return tqdm(total=total, unit=unit, desc=desc, disable=args.quiet, file=sys.stderr, dynamic_ncols=True)


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise UsageError(f"--{name} must be at least 1, not {value}")


def check_customer_id(customer_id: str) -> None:
    """CUSTOMER_ID as the API takes it (recommender.ids' rules): an empty id, say, is refused
    rather than answered with the popular list a stranger gets."""
    from recommender.ids import id_problem

    problem = id_problem(customer_id)
    if problem:
        raise UsageError(f"CUSTOMER_ID {problem}")


def demo_data(args) -> int:
    from recommender.demo import generate_store, write_store

    for name in ("customers", "items", "purchases"):
        _check_positive(name, getattr(args, name))
    check_output("--out", args.out, folder=True)
    store = generate_store(args.customers, args.items, args.purchases, seed=args.seed)
    paths = write_store(store, args.out, args.format)
    print(f"wrote {store.purchases.num_rows} purchases by {args.customers} customers of {args.items} items", file=sys.stderr)
    for path in paths.values():
        print(path)
    return 0


def _event_weights(pairs: list[str]) -> dict[str, float] | None:
    if not pairs:
        return None
    weights = {}
    for pair in pairs:
        kind, sep, value = pair.partition("=")
        try:
            weights[kind] = float(value)
        except ValueError:
            raise UsageError(f"--event-weight {pair!r} must look like TYPE=NUMBER") from None
        if not sep or not kind:
            raise UsageError(f"--event-weight {pair!r} must look like TYPE=NUMBER")
    try:
        checked = check_event_weights(weights)
    except ValueError as error:
        raise UsageError(f"--event-weight: {error}") from None
    if checked.get(PURCHASE, 0.0) <= 0:
        # The given table replaces the defaults (README): leaving purchase out weighs every purchase 0.
        given = "gives purchase no weight" if PURCHASE not in checked else f"weighs purchase {checked[PURCHASE]:g}"
        others = "".join(f" --event-weight {kind}={weight:g}" for kind, weight in checked.items() if kind != PURCHASE)
        raise UsageError(f"--event-weight replaces the default weights, and this table {given}, so purchases would count for nothing; "
                         f"include it: --event-weight {PURCHASE}=1{others}")
    return checked


def _params(args) -> dict:
    """Hyper-parameters from --params-file, overridden by --param, checked against the algorithm."""
    from recommender.algorithms import create_algorithm, parse_params

    params: dict = {}
    if getattr(args, "params_file", None):
        try:
            loaded = json.loads(args.params_file.read_text())
        except FileNotFoundError:
            raise UsageError(f"--params-file {args.params_file} does not exist") from None
        except json.JSONDecodeError as error:
            raise UsageError(f"--params-file {args.params_file} is not valid JSON ({error})") from None
        params.update(loaded.get("params", loaded) if isinstance(loaded, dict) else {})
    try:
        params.update(parse_params(args.algorithm, args.param))
        params = parse_params(args.algorithm, params)
        create_algorithm(args.algorithm, params).validate_config()  # a value out of range is a usage error too
        return params
    except ValueError as error:
        raise UsageError(str(error)) from None


def _store_format(args):
    """The export's column mapping and rules: --columns-file, overridden by the options given."""
    from recommender.store_format import StoreFormat, parse_columns

    try:
        base = StoreFormat.read(args.columns_file) if args.columns_file else StoreFormat()
        columns = parse_columns(args.columns) if args.columns else None
        return base.with_options(columns=columns, returns=args.returns, rows_without_customer=args.rows_without_customer)
    except ValueError as error:
        raise UsageError(f"--columns-file {error}" if args.columns_file and not args.columns else str(error)) from None


def _weighting(args):
    """--half-life and --repeats as a HistoryWeighting."""
    from recommender.weights import HistoryWeighting

    text = str(args.half_life if args.half_life is not None else "none").strip().lower()
    try:
        half_life = None if text in ("none", "") else float(text)
    except ValueError:
        raise UsageError(f"--half-life must be a number of days or 'none', not {args.half_life!r}") from None
    try:
        return HistoryWeighting(half_life, args.repeats or "count")
    except ValueError as error:
        raise UsageError(f"--half-life: {error}") from None


def _weighting_given(args) -> bool:
    """Whether --half-life or --repeats was given (else --algorithm auto chooses the weighting)."""
    return args.half_life is not None or args.repeats is not None


def _split_spec(args):
    from recommender.evaluation.holdout import SplitSpec, cutoff_seconds

    if not 0 < args.test_fraction < 1:
        raise UsageError("--test-fraction must be between 0 and 1")
    _check_positive("leave-last", args.leave_last)
    spec = SplitSpec(_split_kind(args), args.test_fraction, args.leave_last, args.cutoff, args.seed)
    if spec.kind == "time":
        try:
            cutoff_seconds(spec)
        except ValueError as error:  # a missing or unreadable --cutoff is the command line's fault
            raise UsageError(str(error)) from None
    return spec


def _split_kind(args) -> str:
    """--split, or time when only --cutoff is given: a cutoff says which split is meant (it was
    ignored, under the default random split, and recorded as if it had been used)."""
    if args.split is None:
        return "time" if args.cutoff else "random"
    if args.cutoff and args.split != "time":
        raise UsageError(f"--cutoff is the time split's; --split {args.split} does not use it (leave out one or the other)")
    return args.split


def check_output(option: str, path: Path, *, folder: bool = False) -> None:
    """Before any work, for every command's output option: ``path`` (a file, or with ``folder``
    a folder the command fills) can be written. Its folder must exist and take a new file, or
    be creatable (every command creates missing folders) from its nearest existing parent
    (recommender.files' probe, which leaves nothing behind)."""
    from recommender.files import cannot_write_in, first_existing_folder

    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: cannot write there ({path} is a file, not a folder)")
    if not folder and path.is_dir():
        raise UsageError(f"{option} {path}: cannot write there ({path} is a folder; name a file)")
    existing = first_existing_folder(path if folder else path.parent)
    if not existing.is_dir():
        raise UsageError(f"{option} {path}: cannot write there ({existing} is a file, not a folder)")
    if cannot_write_in(existing):
        raise UsageError(f"{option} {path}: cannot write there (folder {existing} is not writable)")


def _parse_ks(text: str) -> list[int]:
    try:
        ks = sorted({int(k) for k in text.split(",") if k.strip()})
    except ValueError:
        raise UsageError(f"--k {text!r} must be comma-separated whole numbers") from None
    if not ks or ks[0] < 1:
        raise UsageError("--k needs at least one cut-off of 1 or more")
    return ks


def train(args) -> int:
    from recommender.purchases import describe_skipped
    from recommender.selection import AUTO
    from training.pipeline import train as train_pipeline

    spark_choice = False
    if args.engine == "spark":
        if args.algorithm not in (None, "spark-als"):
            raise UsageError(f"--engine spark trains Spark MLlib ALS (spark-als), not {args.algorithm}")
        # Without settings the job chooses spark-als's own on validation, as auto does locally.
        spark_choice = args.algorithm is None and not (args.param or args.params_file)
        if spark_choice:
            _check_budget_and_metric(args)
        args.algorithm = "spark-als"
    args.algorithm = args.algorithm or AUTO
    choice_settings = None
    if args.algorithm == AUTO:
        if args.param or args.params_file:
            raise UsageError("--param and --params-file set one algorithm's hyper-parameters; --algorithm auto searches them "
                             "itself (name the algorithm, e.g. --algorithm als, to set them)")
        choice_settings = _choice_settings(args, _weighting(args))
    if args.top_lists < 0:  # 0 means no cache; a negative K silently meant no cache too
        raise UsageError(f"--top-lists must be 0 (no cache) or a number of items, not {args.top_lists}")
    weights = _event_weights(args.event_weight)
    store_format, weighting = _store_format(args), _weighting(args)
    check_output("--models-dir", args.models_dir, folder=True)  # before hours of training, not after
    if args.engine == "spark":
        from training.cli_spark import train_command

        events_path = existing_event_store(args.events) if args.events else None  # checked before Spark starts, as the parameters
        return train_command(args, weights, _params(args), store_format, weighting, events_path, spark_choice)
    started = time.perf_counter()
    try:
        result = train_pipeline(
            args.data,
            catalog_path=args.catalog,
            algorithm=args.algorithm,
            params=_params(args) if args.algorithm != AUTO else None,
            models_dir=args.models_dir,
            promote=args.promote,
            on_bad_rows=args.on_bad_rows,
            event_weights=weights,
            show_progress=not args.quiet,
            evaluation=_split_spec(args) if args.evaluate else None,
            top_lists=args.top_lists,
            events_path=existing_event_store(args.events) if args.events else None,
            choice_settings=choice_settings,
            store_format=store_format,
            weighting=weighting,
        )
    except EmptySplitError as error:  # --cutoff, --leave-last or --test-fraction against this data, found before any fitting
        raise UsageError(str(error)) from None
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if result.choice is not None:
        print(_choice_table(result.choice.record()), file=sys.stderr)
        untried = _untried_weightings(result.choice.record())
        if untried:
            print(f"history weightings not tried before the search ended: {'; '.join(untried)}", file=sys.stderr)
        print(f"chose {result.choice.algorithm}: {result.choice.reason}", file=sys.stderr)
        weighting = result.choice.weighting
    data = result.model.manifest["data"]
    chosen = "".join(f"; chose {name} {value}" for name, value in result.model.algorithm.fitted_settings().items())
    print(
        f"trained {result.model.algorithm.name} on {data['events']} events ({data['customers']} customers, {data['items']} items) "
        f"in {time.perf_counter() - started:.1f}s (its final fit {result.seconds:.1f}s){chosen}; {_history_text(weighting, data)}; {describe_skipped(result.skipped)}"
        + ("; promoted to current" if args.promote else ""),
        file=sys.stderr,
    )
    metrics = result.model.manifest.get("metrics")
    repeats = result.model.manifest.get("repeat_purchases") or {}
    if metrics:
        print(_metrics_line(metrics) + f"; report: {result.path / 'report.html'}", file=sys.stderr)
    if metrics and _split_kind(args) == "time" and repeats.get("test_pairs"):
        print(_buy_again_line(repeats), file=sys.stderr)
    elif result.choice is not None and (result.choice.validation or {}).get("repeat_purchases", {}).get("test_pairs"):
        # Without a time-split evaluation, the choice's own validation (each customer's latest
        # purchases) shows how much this store lives on buying again.
        print(_buy_again_line(result.choice.validation["repeat_purchases"], "the held-out latest fifth of each customer's purchases"),
              file=sys.stderr)
    print(result.path)
    return 0


def _choice_table(choice: dict) -> str:
    """Every trial of an automatic choice: settings, validation figures, seconds."""
    from recommender.selection.trials import history_text, settings_text, weightings_differ

    metric = choice["metric"]
    weighted = weightings_differ(choice["trials"])
    rows = []
    for trial in choice["trials"]:
        figure = trial["metrics"].get(metric)
        recall = next((v for k, v in trial["metrics"].items() if k.startswith("recall@")), None)
        rows.append((
            trial["algorithm"], settings_text(trial["params"]), *((history_text(trial),) if weighted else ()), trial["status"],
            "" if figure is None else f"{figure:.4f}", "" if recall is None else f"{recall:.4f}", f"{trial['seconds']:.1f}s",
            trial.get("note", ""),
        ))
    return _table(("algorithm", "settings", *(("history",) if weighted else ()), "trial", metric, "recall", "time", "note"), rows)


def _untried_weightings(choice: dict) -> list[str]:
    """The history weightings the choice set out to compare that no trial used (the search
    ended first), as people read them."""
    from recommender.weights import HistoryWeighting

    compared = [HistoryWeighting.from_dict(w) for w in (choice.get("validation") or {}).get("history_weightings") or []]
    tried = {HistoryWeighting.from_dict(t.get("history_weighting")) for t in choice["trials"] if t["status"] != "skipped"}
    return [w.describe() for w in compared if w not in tried] if len(compared) > 1 else []


def _history_text(weighting, data: dict) -> str:
    returns = data.get("returns") or 0
    return weighting.describe() + (f", {returns} returns netted out" if returns else "")


def _buy_again_line(repeats: dict, period: str = "the test period's purchases") -> str:
    """How much of ``period`` (what was held out) the customers had bought before."""
    return (
        f"buy again: {repeats['repeat_share']:.1%} of {period} are items the customer had already bought "
        "(recommendations leave them out unless --include-purchased / include_purchased=true)"
    )


def _metrics_line(metrics: dict) -> str:
    shown = [k for k in ("recall@20", "ndcg@20", "precision@20", "coverage@20") if k in metrics]
    return "held-out " + ", ".join(f"{k} {metrics[k]:.4f}" for k in shown)


def evaluate(args) -> int:
    from recommender.evaluation import load_lightgcn
    from recommender.evaluation.holdout import evaluate_holdout, split_log
    from recommender.selection import AUTO

    ks = _parse_ks(args.k)
    folder = args.report or Path("reports") / f"{args.algorithm}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    check_output("--report", folder, folder=True)  # before the evaluation, not after it
    if args.algorithm == AUTO and (args.param or args.params_file):
        raise UsageError("--param and --params-file set one algorithm's hyper-parameters; --algorithm auto searches them itself")
    params = _params(args) if args.algorithm != AUTO else None
    store_format, weighting = _store_format(args), _weighting(args)
    if args.format == "lightgcn" and not store_format.is_plain:
        raise UsageError("--format lightgcn has no columns to map: leave out --columns, --returns and --rows-without-customer")
    if args.format == "lightgcn":
        if not args.test:
            raise UsageError("--format lightgcn needs --test (the LightGCN test file)")
        train_log, test_log = load_lightgcn(args.data, args.test)
        split = {"kind": "given", "test": str(args.test)}
    elif args.test:
        train_log, test_log = _given_split(args.data, args.test, store_format, args.on_bad_rows)
        split = {"kind": "given", "test": str(args.test)}
    else:
        spec = _split_spec(args)
        try:
            train_log, test_log = split_log(_loaded_noting_skips(args, store_format), spec)
        except EmptySplitError as error:
            raise UsageError(str(error)) from None
        split = vars(spec)
    algorithm, choice = args.algorithm, None
    if algorithm == AUTO:
        from training.pipeline import choose_model

        # Chosen on the training part only: the test purchases never influence the choice.
        choice = choose_model(train_log, _choice_settings(args, weighting), show_progress=not args.quiet)
        algorithm, params, weighting = choice.algorithm, choice.params, choice.weighting
        print(f"chose {algorithm} ({weighting.describe()}): {choice.reason}", file=sys.stderr)
    result = evaluate_holdout(
        train_log, test_log, algorithm=algorithm, params=params, ks=ks,
        settings={"data": str(args.data), "split": split, "store_format": store_format.to_dict()},
        show_progress=not args.quiet, weighting=weighting, choice=choice.record() if choice else None,
        start_state=choice.start_state if choice else None,
    )
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in result.files().items():
        write_bytes_atomic(folder / name, content)
    rows = [(name, f"{value:.4f}") for name, value in result.metrics.items() if name != "customers"]
    print(_table(("metric", "value"), rows))
    repeats = result.report.get("repeat_purchases") or {}
    if split.get("kind") in ("time", "given") and repeats.get("test_pairs"):
        print(_buy_again_line(repeats, "the test period's purchases" if split["kind"] == "time" else "the test file's purchases"), file=sys.stderr)
    print(f"{int(result.metrics['customers'])} customers evaluated; fit {result.fit_seconds:.1f}s; report: {folder / 'report.html'}", file=sys.stderr)
    return 0


def _loaded_noting_skips(args, store_format):
    """--data as evaluate and tune read it, with a note of the rows dropped (as train prints)."""
    from recommender.purchases import describe_skipped, load_purchases

    log = load_purchases(args.data, store_format=store_format, on_bad_rows=args.on_bad_rows)
    if log.skipped:
        print(f"note: {describe_skipped(log.skipped)}", file=sys.stderr)
    return log


def _given_split(train_path: Path, test_path: Path, store_format=None, on_bad_rows: str = "error"):
    """Train and test purchase files read against one shared vocabulary."""
    import numpy as np

    from recommender.purchases import PurchaseLog, load_purchases
    from recommender.vocabulary import IdVocabulary

    train = load_purchases(train_path, store_format=store_format, on_bad_rows=on_bad_rows)
    test = load_purchases(test_path, store_format=store_format, on_bad_rows=on_bad_rows)
    customers = IdVocabulary(np.unique(np.concatenate([train.customers.ids, test.customers.ids])))
    items = IdVocabulary(np.unique(np.concatenate([train.items.ids, test.items.ids])))

    def remap(log: PurchaseLog) -> PurchaseLog:
        c = customers.lookup(log.customers.ids.tolist())[log.customer_index].astype(np.int32)
        i = items.lookup(log.items.ids.tolist())[log.item_index].astype(np.int32)
        return PurchaseLog(customers, items, c, i, log.weight, log.timestamp, bought=log.bought)

    return remap(train), remap(test)


def tune(args) -> int:
    from recommender.tuning import tune as run_search

    space_path = args.space or SEARCH_SPACES / f"{args.algorithm}.json"
    try:
        space = json.loads(Path(space_path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"search space {space_path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        # json's own message ("Expecting value: line 1 column 1") names no file.
        raise UsageError(f"--space {space_path} is not JSON: {error}") from None
    _check_positive("trials", args.trials)
    _check_budget_and_metric(args)
    out = args.out or Path("tuned") / f"{args.algorithm}.json"
    check_output("--out", out)  # before the search, not after it
    log = _loaded_noting_skips(args, _store_format(args))
    print(f"tuning {args.algorithm}: at most {args.trials} trials in {args.budget:g} s (kept: a trial still running then is stopped)", file=sys.stderr)
    with tqdm(total=round(args.budget), unit="s", desc=f"tuning {args.algorithm}", disable=args.quiet, file=sys.stderr, dynamic_ncols=True,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total} s {postfix}") as bar:
        started = time.monotonic()
        best = [None]

        def tick() -> None:
            bar.n = min(bar.total, time.monotonic() - started)
            bar.refresh()

        def finished(trial) -> None:
            if best[0] is None or trial.metrics[args.metric] > best[0]:
                best[0] = trial.metrics[args.metric]
                bar.set_postfix_str(f"best {args.metric} {best[0]:.4f}", refresh=False)
            tick()

        def not_finished(outcome) -> None:
            bar.write(f"trial {outcome.params or 'defaults'} {outcome.status}: {outcome.note}", file=sys.stderr)

        trials = run_search(
            log, args.algorithm, space, metric=args.metric, budget_seconds=args.budget, max_trials=args.trials,
            seed=args.seed, threads=blas_threads(), on_trial=finished, on_skip=not_finished, waiting=tick,
        )
    varied = [name for name in space] or ["(defaults)"]
    rows = [
        (str(rank), *(str(t.params.get(n, "")) if not isinstance(t.params.get(n), float) else f"{t.params[n]:.4g}" for n in varied),
         f"{t.metrics[args.metric]:.4f}", f"{t.seconds:.1f}s")
        for rank, t in enumerate(trials, 1)
    ]
    print(_table(("#", *varied, args.metric, "time"), rows))
    best = {"algorithm": args.algorithm, "params": trials[0].params, "validation": {args.metric: trials[0].metrics[args.metric]},
            "data": str(args.data), "trials": len(trials)}
    write_json_atomic(out, best)
    if make_train_reads(out, args.algorithm):
        print(f"best of {len(trials)} trials written to {out} (make train ALGO={args.algorithm} picks it up)", file=sys.stderr)
    else:
        print(f"best of {len(trials)} trials written to {out}; train with it: recommender train --algorithm {args.algorithm} "
              f"--params-file {out} (make train reads only tuned/{args.algorithm}.json)", file=sys.stderr)
    return 0


def make_train_reads(path: Path, algorithm: str) -> bool:
    """Whether ``make train ALGO=algorithm`` reads the tuned parameters at ``path``."""
    return (PROJECT / "Makefile").is_file() and Path(path).resolve() == (PROJECT / "tuned" / f"{algorithm}.json").resolve()


def score(args) -> int:
    from recommender.artifacts import load_model
    from recommender.topn import candidate_mask
    from training.batch import output_format, score_all

    _check_positive("n", args.n)
    try:
        output_format(args.out)
    except ValueError as error:
        raise UsageError(str(error)) from None
    check_output("--out", args.out)
    model = load_model(args.model)
    customers = _read_id_list(args.customers, "customer_id") if args.customers else None
    include = _read_id_list(args.include, "item_id") if args.include else None
    try:  # the filters' own checks, before any work: the same rules as the API's
        candidate_mask(model.items, model.catalog, include=include, category=args.category)
    except NoKnownItemsError as error:
        raise UsageError(f"{args.include}: {error}") from None
    except UnknownCategoryError as error:
        raise UsageError(str(error)) from None
    _warn_unknown(customers, model.customers, "customers", args.customers, "they get popular items")
    _warn_unknown(include, model.items, "items", args.include, "they are ignored")
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


def _warn_unknown(ids: list[str] | None, vocabulary, what: str, path: Path, consequence: str) -> None:
    """One line on stderr when some ids listed in ``path`` are unknown to the model, naming the
    first as it was read: an id a spreadsheet's export wrote in quotes ("01234") shows them."""
    unknown = vocabulary.lookup(ids) < 0 if ids else None
    if unknown is not None and unknown.any():
        first = ids[int(unknown.argmax())]
        print(f"warning: {int(unknown.sum())} of {len(ids)} {what} in {path} are unknown to the model (the first: {first!r}); {consequence}",
              file=sys.stderr)


def _read_id_list(path: Path, header: str) -> list[str]:
    from recommender.tables import check_utf8_text

    try:
        check_utf8_text(path)  # UTF-16 or stray bytes: named with the file and line, as purchase files are
        # utf-8-sig: a spreadsheet's "CSV UTF-8" starts with a byte-order mark, which would make the header an id
        lines = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]
    except FileNotFoundError:
        raise UsageError(f"id list not found: {path}") from None
    ids = [line for line in lines if line]
    if ids and ids[0] == header:
        ids = ids[1:]
    return list(dict.fromkeys(ids))


def recommend(args) -> int:
    from recommender.artifacts import load_model
    from recommender.events import NO_FEEDBACK, open_event_store
    from recommender.model import feedback_options
    from recommender.weights import DEFAULT_EVENT_WEIGHTS

    _check_positive("n", args.n)
    check_customer_id(args.customer_id)
    model = load_model(args.model)
    feedback = NO_FEEDBACK
    if args.events is not None:
        store = open_event_store(existing_event_store(args.events))
        weights = (model.manifest.get("data") or {}).get("event_weights") or DEFAULT_EVENT_WEIGHTS
        try:
            feedback = store.customer_feedback(args.customer_id, weights, after_id=model.events_trained_through)
        finally:
            store.close()  # as `forget` does: PostgreSQL's pool closed here, not by the garbage collector
    # As the API answers: new events folded in, "not interested" left out, an erased customer's history unused.
    options = feedback_options(model, feedback)
    result = model.recommend(args.customer_id, args.n, **options)
    if args.json:
        print(json.dumps({"customer_id": result.customer_id, "source": result.source, "model_version": model.version, "items": [r.to_dict() for r in result.items]}, indent=2))
        return 0
    bought = model.purchased(args.customer_id) if options["training_history"] else []
    categories = Counter(str(model.catalog.categories[model.items.index(item)]) for item in bought)
    favourites = ", ".join(f"{name} ({count})" for name, count in categories.most_common(3) if name)
    if model.customers.get(args.customer_id) < 0 and not feedback.new_events:
        print(f"note: customer {args.customer_id} is not in the model's training data{_id_hint(model, args.customer_id)}", file=sys.stderr)
    print(
        f"customer {args.customer_id} — {len(bought)} item{'s' if len(bought) != 1 else ''} bought" + (f", mostly {favourites}" if favourites else "")
        + f" — {result.source} recommendations from {model.version}"
    )
    with_category = any(r.category for r in result.items)  # no column of blanks for a store without a catalog
    rows = [(str(rank), r.name, *((r.category,) if with_category else ()), _score_text(r.score), r.reason) for rank, r in enumerate(result.items, 1)]
    print(_table(("#", "item", *(("category",) if with_category else ()), "score", "why"), rows))
    return 0


def _id_hint(model, customer_id: str) -> str:
    """Where the id as typed differs from the model's by the loader's rule for ids stored as
    whole floating-point numbers (a spreadsheet's 17850.0 is read as 17850)."""
    import re

    from recommender.ids import WHOLE_FLOAT_TEXT

    if re.match(WHOLE_FLOAT_TEXT, customer_id) and model.customers.get(re.sub(r"\.0+$", "", customer_id)) >= 0:
        return f"; it knows {re.sub(r'[.]0+$', '', customer_id)} (ids written as whole floating-point numbers are read without '.0')"
    return ""


def _score_text(score: float) -> str:
    """Scores as people read them: a popular item's score is its number of buyers (39,320, not 3.932e+04)."""
    return f"{score:,.0f}" if abs(score) >= 1000 else f"{score:.4g}"


def existing_event_store(location: str) -> str:
    """``--events`` checked, for every command that takes it: a known kind of location, and a
    SQLite file that exists (a tool that reads must not create an empty store and report
    nothing) and is an SQLite database (SQLite's own "file is not a database" names no file)."""
    from recommender.events import not_an_event_store, store_missing

    try:
        missing = store_missing(location)
    except ValueError as error:
        raise UsageError(f"--events {error}") from None
    if missing:
        raise UsageError(f"--events {location} does not exist (the API's event store, e.g. events.sqlite3)")
    problem = not_an_event_store(location)
    if problem:
        raise UsageError(f"--events {location} {problem}")
    return location


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(v)) for v in column) for column in zip(header, *rows)]
    line = lambda values: "  ".join(str(v).ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


# What --port takes; the rule of python -m serving's --port too (training never imports serving).
PORTS = "1-65535 (0: any free port)"


def serve(args) -> int:
    """Hand over to the serving package's own entry point (training never imports serving)."""
    if not 0 <= args.port <= 65535:  # else the number would silently wrap round to another port
        raise UsageError(f"--port must be {PORTS}, not {args.port}")
    command = [sys.executable, "-m", "serving", "--model", str(args.model), "--port", str(args.port), "--host", args.host]
    if args.events_db:
        command += ["--events-db", args.events_db]
    os.execv(sys.executable, command)
    return 0  # not reached: execv replaces this process


def convert_lightgcn(args) -> int:
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    from recommender.evaluation.splits import read_lightgcn_pairs

    check_output("--out", args.out)
    pairs = read_lightgcn_pairs(args.input)
    table = pa.table({"customer_id": [u for u, _ in pairs], "item_id": [i for _, i in pairs]})
    buffer = pa.BufferOutputStream()
    pa_csv.write_csv(table, buffer)
    write_bytes_atomic(args.out, buffer.getvalue().to_pybytes())
    print(f"wrote {len(pairs)} purchases", file=sys.stderr)
    print(args.out)
    return 0


def models(args) -> int:
    from recommender import artifacts
    from recommender.evaluation import EVALUATED_LISTS

    if args.action in ("promote", "rollback"):
        before = artifacts.current_version(args.models_dir)
        path = artifacts.promote(args.models_dir, args.version) if args.action == "promote" else artifacts.rollback(args.models_dir)
        print(f"current: {before or 'none'} -> {path.name}")
    else:
        current = artifacts.current_version(args.models_dir)
        rows = []
        for manifest in artifacts.list_models(args.models_dir):
            metrics = manifest.get("metrics") or {}
            shown = ", ".join(f"{k}={metrics[k]:.4f}" for k in _listed_metrics(metrics))
            if shown and (manifest.get("evaluation") or {}).get("lists") != EVALUATED_LISTS:
                shown += " (raw lists: not comparable)"  # evaluated before the served lists were
            rows.append(("*" if manifest["version"] == current else "", manifest["version"], manifest["algorithm"], str(manifest["customers"]), str(manifest["items"]), f"{manifest.get('training_seconds', 0):.1f}s", shown))
        if not rows:
            print(f"no models in {args.models_dir}")
        else:
            print(_table(("", "version", "algorithm", "customers", "items", "training", "metrics"), rows))
    return 0


# What `models list` shows of each model's evaluation: the automatic choice's default metric
# first, then recall; any two others when a model was evaluated without them.
LISTED_METRICS = ("ndcg@20", "recall@20")


def _listed_metrics(metrics: dict) -> list[str]:
    numeric = [name for name, value in metrics.items() if name != "customers" and isinstance(value, (int, float))]
    preferred = [name for name in LISTED_METRICS if name in numeric]
    return preferred or numeric[:2]


def _choice_settings(args, weighting):
    """The automatic choice's settings from train's or evaluate's options, checked; a weighting
    given on the command line is kept for every trial, else the choice picks one."""
    from training.pipeline import ChoiceSettings

    _check_budget_and_metric(args)
    if args.memory_limit_gb <= 0:
        raise UsageError(f"--memory-limit-gb must be above 0, not {args.memory_limit_gb:g}")
    return ChoiceSettings(args.budget, args.metric, args.memory_limit_gb, args.seed, weighting if _weighting_given(args) else None)


def _check_budget_and_metric(args) -> None:
    """--budget (when given) and --metric, as train's automatic choice and tune both take them."""
    from recommender.selection import parse_metric

    if args.budget is not None and args.budget <= 0:
        raise UsageError(f"--budget must be above 0 seconds, not {args.budget:g}")
    try:
        parse_metric(args.metric)
    except ValueError as error:
        raise UsageError(f"--metric: {error}") from None
