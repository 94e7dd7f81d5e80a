"""What graph-filter's batch walk and reasons cost through the customers and through the
co-buying matrix C = Rᵀ D_u^-b R (``GraphFilter.item_walk``), on demo-generator stores.

    python -m research.co_buying_walk [--stores demo,demo-sparse] [--threads 1]

Per store: the walk L(r) of every customer, top 50 with reasons for every customer, and
one-customer answers with their reasons (300 training customers); each first with C not
held (as a large catalogue, walking through the customers), then held. Stores: ``demo`` is
``make demo``'s (5,000 customers, 2,000 items, 150,000 purchases: C dense); ``demo-sparse`` is
the shape of ``make bench-stores``' (20,000 customers, 20,000 items, 160,000 purchases: C sparse).
Figures are in docs/benchmarks.md ("A small catalogue walks through its co-buying matrix").
"""

import tempfile
import time
from contextlib import contextmanager

import numpy as np
from threadpoolctl import threadpool_limits

from recommender.algorithms import create_algorithm, graph_filter
from recommender.demo import generate_store, write_store
from recommender.interactions import Interactions
from recommender.purchases import load_purchases
from recommender.topn.top_lists import compute_top_lists
from research.common import parser, run_log

SHAPES = {"demo": (5000, 2000, 150_000), "demo-sparse": (20_000, 20_000, 160_000)}


@contextmanager
def co_buying_held(held: bool):
    """C held by the usual rule, or never (both limits at 0)."""
    limits = graph_filter.DENSE_WALK_ITEMS, graph_filter.SPARSE_WALK_ENTRIES
    if not held:
        graph_filter.DENSE_WALK_ITEMS = graph_filter.SPARSE_WALK_ENTRIES = 0
    try:
        yield
    finally:
        graph_filter.DENSE_WALK_ITEMS, graph_filter.SPARSE_WALK_ENTRIES = limits


def seconds(work, *args) -> float:
    started = time.perf_counter()
    work(*args)
    return time.perf_counter() - started


def answer_with_reasons(model, row) -> None:
    model.contributions(row, model.recommend(row, 20)[0][0])


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("--stores", default="demo,demo-sparse")
    cli.add_argument("--threads", type=int, default=1)
    args = cli.parse_args()
    log = run_log(__file__)
    for store in args.stores.split(","):
        with tempfile.TemporaryDirectory() as folder:
            written = write_store(generate_store(*SHAPES[store], seed=42), folder, "parquet")
            matrix = Interactions.from_log(load_purchases(written["purchases"])).matrix
        with threadpool_limits(args.threads):
            model = create_algorithm("graph-filter", {}).fit(matrix)
            binary = matrix.copy()
            binary.data[:] = 1.0
            customers = np.random.default_rng(0).integers(0, matrix.shape[0], 300)
            for held in (False, True):
                with co_buying_held(held):
                    model._forget_derived()
                    built = seconds(model.item_walk)
                    walk = seconds(model._walk, binary)
                    lists = seconds(compute_top_lists, model, matrix, 50)
                    answers = []
                    for customer in customers:
                        answers.append(seconds(answer_with_reasons, model, matrix[int(customer)]))
                    found = model.item_walk()
                    kind = "not held" if found is None else f"{type(found).__name__} {getattr(found, 'nnz', found.size):,} entries"
                    log(f"{store} {matrix.shape}: C {kind} (built in {built:.2f} s); walk of every customer {walk:.2f} s; "
                        f"top 50 with reasons {lists:.2f} s; one answer with reasons median {np.median(answers) * 1e3:.2f} ms, "
                        f"p99 {np.percentile(answers, 99) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
