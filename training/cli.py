"""The recommender command line: demo data, training, batch scoring, model management.

Exit codes: 0 success, 1 bad data or a damaged model (one clear line on stderr),
2 usage errors (argparse's convention).
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
from pathlib import Path

from recommender.algorithms import ALGORITHMS, DEFAULT_ALGORITHM
from recommender.algorithms.ease import DEFAULT_MEMORY_LIMIT_GB
from recommender.errors import RecommenderError
from recommender.selection import AUTO, DEFAULT_METRIC

from . import commands, loop_commands
from .commands import DEFAULT_MODELS_DIR, UsageError

THREADS_HELP = "BLAS threads (default: all cores)"
# How --events names the API's event store; the same values as RECOMMENDER_EVENTS_URL.
EVENTS_FORMS = "a SQLite file such as events.sqlite3, sqlite:///events.sqlite3, or postgresql://user@host:port/database"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    if args.threads < 1:  # threadpoolctl would take 0 or -1 as "no limit", the opposite of what was asked
        parser.error(f"--threads must be at least 1, not {args.threads}")
    from threadpoolctl import threadpool_limits

    # PostgreSQL's connection pool logs each failed attempt as a warning with a traceback's
    # worth of detail; a command reports the outage once, in its own error line, with the cause.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    # BLAS threads are set explicitly so runs are repeatable and never oversubscribed.
    with threadpool_limits(args.threads, "blas"):
        try:
            return args.handler(args) or 0
        except UsageError as error:
            print(f"recommender {args.command}: error: {error}", file=sys.stderr)
            return 2
        except BrokenPipeError:
            # The reader went away (`recommender recommend ... | head`): not an error to report.
            # stdout is pointed at /dev/null so the interpreter's last flush cannot fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        except (RecommenderError, ValueError, OSError, sqlite3.Error) as error:  # sqlite3.Error: every event store outage
            print(f"recommender {args.command}: error: {error}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted; nothing was published", file=sys.stderr)
            return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recommender", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help=THREADS_HELP)
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo-data", help="write a synthetic store (purchases + catalog)")
    demo.add_argument("--out", required=True, type=Path, help="folder for purchases.<fmt> and catalog.<fmt>")
    demo.add_argument("--customers", type=int, default=5000, help="number of customers (default: %(default)s)")
    demo.add_argument("--items", type=int, default=2000, help="number of items (default: %(default)s)")
    demo.add_argument("--purchases", type=int, default=150_000, help="number of purchase rows (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=42, help="seed of every random choice (default: %(default)s)")
    demo.add_argument("--format", choices=("csv", "parquet"), default="csv", help="file format (default: %(default)s)")
    demo.set_defaults(handler=commands.demo_data)

    train = sub.add_parser("train", help="train a model and publish it under --models-dir")
    train.add_argument("--data", required=True, type=Path, help="purchase history (.csv or .parquet)")
    train.add_argument("--catalog", type=Path, help="item catalog with item_id,name,category")
    train.add_argument("--algorithm", choices=[AUTO, *sorted(ALGORITHMS)], help=f"default: {AUTO} (choose and tune the algorithm on a validation split of --data); spark-als with --engine spark")
    _add_choice_arguments(train, spark=True)
    train.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="hyper-parameter (repeatable)")
    train.add_argument("--models-dir", type=Path, default=Path(DEFAULT_MODELS_DIR), help="where model folders are published (default: %(default)s)")
    train.add_argument("--promote", action="store_true", help="make the new model current")
    train.add_argument("--event-weight", action="append", default=[], metavar="TYPE=WEIGHT", help="weight of an event type (repeatable; replaces the defaults, so name purchase too: purchase=1)")
    train.add_argument("--params-file", type=Path, help="JSON of hyper-parameters (e.g. written by `recommender tune`); --param overrides")
    train.add_argument("--events", help=f"the API's event store, read alongside --data ({EVENTS_FORMS})")
    train.add_argument("--top-lists", type=int, default=50, metavar="K", help="cache each customer's top K items for serving (0: no cache)")
    train.add_argument("--evaluate", action="store_true", help="first measure the algorithm on a held-out split; report saved in the model folder")
    _add_store_format_arguments(train)
    _add_history_arguments(train)
    _add_split_arguments(train)
    _add_engine_options(train)
    train.add_argument("--data-format", choices=("csv", "parquet"), help="with --engine spark: format of --data (default: from its suffix, else parquet)")
    train.set_defaults(handler=commands.train)

    score = sub.add_parser("score", help="batch top-N for every (or the listed) customer")
    score.add_argument("--model", type=Path, default=Path(DEFAULT_MODELS_DIR) / "current", help="model folder (default: %(default)s)")
    score.add_argument("--n", type=int, default=20, help="items per customer (default: %(default)s)")
    score.add_argument("--out", required=True, type=Path, help="output .csv, .parquet or .jsonl")
    score.add_argument("--customers", type=Path, help="file of customer ids, one per line (a header 'customer_id' is skipped)")
    purchased = score.add_mutually_exclusive_group()
    purchased.add_argument("--exclude-purchased", dest="exclude_purchased", action="store_true", default=True, help="never recommend already purchased items (the default)")
    purchased.add_argument("--include-purchased", dest="exclude_purchased", action="store_false", help="allow already purchased items")
    score.add_argument("--category", metavar="NAME", help="recommend only items of this catalog category")
    score.add_argument("--include", type=Path, metavar="FILE", help="candidate items: file of item ids, one per line (a header 'item_id' is skipped)")
    _add_engine_options(score)
    score.set_defaults(handler=commands.score)

    recommend = sub.add_parser("recommend", help="print recommendations for one customer")
    recommend.add_argument("customer_id", help="the customer's id, as in the purchase file")
    recommend.add_argument("--model", type=Path, default=Path(DEFAULT_MODELS_DIR) / "current", help="model folder (default: %(default)s)")
    recommend.add_argument("--n", type=int, default=10, help="how many items (default: %(default)s)")
    recommend.add_argument("--events", help=f"the API's event store ({EVENTS_FORMS}): fold in the customer's events since the model, as the API does")
    recommend.add_argument("--json", action="store_true", help="print JSON instead of a table")
    recommend.set_defaults(handler=commands.recommend)

    evaluate = sub.add_parser("evaluate", help="fit on a train split, measure on the test split, write a report")
    evaluate.add_argument("--data", required=True, type=Path, help="purchase history (or LightGCN train file with --format lightgcn)")
    evaluate.add_argument("--test", type=Path, help="a given test file (implies --split given)")
    evaluate.add_argument("--format", choices=("purchases", "lightgcn"), default="purchases", help="purchase files, or LightGCN's train/test text files (default: %(default)s)")
    evaluate.add_argument("--algorithm", default=AUTO, choices=[AUTO, *sorted(ALGORITHMS)], help="default: %(default)s (chosen on the training part, as train does)")
    evaluate.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="hyper-parameter (repeatable)")
    evaluate.add_argument("--params-file", type=Path, help="JSON of hyper-parameters (e.g. written by `recommender tune`); --param overrides")
    evaluate.add_argument("--k", default="10,20", help="cut-offs, comma separated (default 10,20)")
    _add_choice_arguments(evaluate)
    evaluate.add_argument("--report", type=Path, help="report folder (default reports/<algorithm>-<time>)")
    _add_store_format_arguments(evaluate)
    _add_history_arguments(evaluate)
    _add_split_arguments(evaluate)
    evaluate.set_defaults(handler=commands.evaluate)

    tune = sub.add_parser("tune", help="search hyper-parameters on a validation split of the training data")
    tune.add_argument("--data", required=True, type=Path, help="training purchase history (never the test set)")
    tune.add_argument("--algorithm", default=DEFAULT_ALGORITHM, choices=sorted(ALGORITHMS), help="default: %(default)s")
    tune.add_argument("--space", type=Path, help="search space JSON (default: training/search_spaces/<algorithm>.json)")
    tune.add_argument("--budget", type=float, default=300.0, help="seconds to spend (default 300)")
    tune.add_argument("--trials", type=int, default=20, help="at most this many trials (default 20)")
    tune.add_argument("--metric", default="ndcg@20", help="validation metric to maximise (default: %(default)s)")
    tune.add_argument("--seed", type=int, default=42, help="seed of the validation split and the search (default: %(default)s)")
    tune.add_argument("--out", type=Path, help="where to write the best parameters (default tuned/<algorithm>.json)")
    _add_store_format_arguments(tune)
    tune.set_defaults(handler=commands.tune)

    serve = sub.add_parser("serve", help="run the recommendation API for development (production: make serve)")
    serve.add_argument("--model", default=str(Path(DEFAULT_MODELS_DIR) / "current"), help="model folder (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8000, help=f"{commands.PORTS}; default: %(default)s")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    serve.add_argument("--events-db", help=f"event store ({EVENTS_FORMS}; default: events.sqlite3)")
    serve.set_defaults(handler=commands.serve)

    forget = sub.add_parser("forget", help="erase a customer: their stored events and logged answers, and (with --rewrite-models) their rows in published models")
    forget.add_argument("customer_id", metavar="CUSTOMER_ID", help="the customer's id, as in the purchase files and the API")
    forget.add_argument("--events", required=True, help=f"the API's event store ({EVENTS_FORMS}); the erasure list is kept there")
    forget.add_argument("--models-dir", type=Path, default=Path(DEFAULT_MODELS_DIR), help="published models (default: %(default)s)")
    forget.add_argument("--rewrite-models", action="store_true", help="rewrite every published model that holds an erased customer, without them")
    forget.set_defaults(handler=loop_commands.forget)

    experiments = sub.add_parser("experiments", help="online experiments between models")
    experiment_actions = experiments.add_subparsers(dest="action", metavar="ACTION", required=True)
    report = experiment_actions.add_parser("report", help="figures, verdicts and plots of every experiment, as an HTML page")
    report.add_argument("--events", required=True, help=f"the API's event store ({EVENTS_FORMS}); answers and events are read from it")
    report.add_argument("--out", required=True, type=Path, help="the HTML page to write")
    report.add_argument("--experiments", type=Path, help="the experiments file (control, metric, effect size); default: as the answer log shows them")
    report.add_argument("--window-hours", type=float, default=24.0, help="attribution window (default: %(default)s)")
    report.add_argument("--model", type=Path, help=f"model whose catalog prices give revenue (default: {Path(DEFAULT_MODELS_DIR) / 'current'}, when there is one)")
    report.add_argument("--points", type=int, default=40, help="points in time on each plot, at least 2 (default: %(default)s)")
    report.set_defaults(handler=loop_commands.experiments_report)

    convert = sub.add_parser("convert-lightgcn", help="turn a LightGCN 'user item item ...' file into a purchases CSV")
    convert.add_argument("input", type=Path, help="LightGCN file: one line per user, 'user item item ...'")
    convert.add_argument("--out", required=True, type=Path, help="purchases CSV to write")
    convert.set_defaults(handler=commands.convert_lightgcn)

    models = sub.add_parser("models", help="list, promote or roll back published models")
    models.add_argument("--models-dir", type=Path, default=Path(DEFAULT_MODELS_DIR), help="default: %(default)s")
    actions = models.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every published model, current one marked")
    promote = actions.add_parser("promote", help="make VERSION the current model")
    promote.add_argument("version", help="a version listed by `recommender models list`")
    rollback = actions.add_parser("rollback", help="promote the model that was current before the present one (a second rollback returns to the present one)")
    for action in (listing, promote, rollback):  # also after the action (`models list --models-dir X`), as people type it
        action.add_argument("--models-dir", type=Path, default=argparse.SUPPRESS, help="as before the action")
    models.set_defaults(handler=commands.models)
    for command in sub.choices.values():
        # Also after the command (`recommender score ... --quiet --threads 4`), as people type
        # them and the README shows; not set there unless given, so one before the command still counts.
        command.add_argument("--threads", type=int, default=argparse.SUPPRESS, help=THREADS_HELP)
        command.add_argument("--quiet", "-q", action="store_true", default=argparse.SUPPRESS, help="no progress bars")
    return parser


def _add_engine_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--engine", choices=("local", "spark"), default="local", help="run on this machine (default) or as an Apache Spark job")
    command.add_argument("--spark-master", metavar="URL", help="with --engine spark: local[N], spark://host:7077, yarn, k8s://... (default: spark-submit's, else local[*])")


def _add_choice_arguments(parser: argparse.ArgumentParser, spark: bool = False) -> None:
    """The automatic choice's options (train and evaluate choose the same way)."""
    spark_note = "; with --engine spark and no --param: for its choice of settings (default: none)" if spark else ""
    parser.add_argument("--budget", type=float, metavar="SECONDS", help="with auto: seconds for the choice (default: 4x the first round's "
                        f"estimated cost, at least 10 s, printed; the search may stop sooner){spark_note}")
    parser.add_argument("--metric", default=DEFAULT_METRIC, help="with auto: the validation metric the choice maximises (default: %(default)s)")
    parser.add_argument("--memory-limit-gb", type=float, default=DEFAULT_MEMORY_LIMIT_GB,
                        help="with auto: largest dense items x items matrix a candidate may hold (default: %(default)s GB; EASE needs one)")


def _add_store_format_arguments(parser: argparse.ArgumentParser) -> None:
    fields = "customer_id, item_id, timestamp, quantity, event_type; catalog: name, category, price"
    parser.add_argument("--columns", metavar="FIELD=COLUMN,...", help=f"the file's own column names, e.g. customer_id=CustomerID,item_id=StockCode ({fields})")
    parser.add_argument("--columns-file", type=Path, metavar="FILE", help='JSON: {"columns": {...}, "returns": "net", "rows_without_customer": "skip", "not_products": ["POST", ...]}; options given here override it')
    parser.add_argument("--returns", choices=("error", "net"), help="a negative quantity stops the run (error, the default) or is a return netted out of the purchases (net)")
    parser.add_argument("--rows-without-customer", choices=("error", "skip"), help="a row with no customer id stops the run (error, the default) or is skipped and counted (skip)")
    parser.add_argument("--on-bad-rows", choices=("error", "skip"), default="error", help="stop at the first bad row, or drop bad rows and count them (default: %(default)s)")


def _add_history_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--half-life", metavar="DAYS", help="recency: an event's weight halves every DAYS days before the newest event (default: none; with --algorithm auto, chosen on validation unless given)")
    parser.add_argument("--repeats", choices=("count", "log", "once"), help="repeated purchases of an item: count (sum), log (log2(1+sum)), once (capped at 1) (default: count; with --algorithm auto, chosen on validation unless given)")


def _add_split_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", choices=("random", "leave-last", "time"), help="how to hold out test purchases (default: time with --cutoff, else random)")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="random split: share of each customer's items held out")
    parser.add_argument("--leave-last", type=int, default=1, help="leave-last split: most recent items held out per customer")
    parser.add_argument("--cutoff", help="time split: events at or after this time (ISO 8601 or epoch) are test (implies --split time)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the random splits (--evaluate, and the validation split of --algorithm auto)")



if __name__ == "__main__":
    sys.exit(main())
