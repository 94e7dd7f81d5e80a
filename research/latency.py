"""Per-request costs of graph-filter settings on Gowalla, one BLAS thread, 100 random training
customers: live scoring of one history row, and ``contributions`` of its 10 best items (the
per-purchase reasons; norms cached by ``warm_up``). The fit runs on two BLAS threads.

    python -m research.latency '<json dict of graph-filter params>'
    python -m research.latency '{"rank":800,"history_exponent":0.5,"co_buyer_exponent":0.5,"popularity_exponent":0.3,"low_rank_weight":0.5,"sharpening":0.85}'
"""

import json
import time

import numpy as np
from threadpoolctl import threadpool_limits

from recommender.algorithms import create_algorithm
from recommender.evaluation import load_lightgcn, split_matrices
from research.common import DATA, parser, run_log


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("params", type=json.loads, help="JSON dict of graph-filter parameters")
    params = cli.parse_args().params
    log = run_log(__file__)
    train, _ = split_matrices(*load_lightgcn(DATA / "train.txt", DATA / "test.txt"))
    with threadpool_limits(2, "blas"):
        m = create_algorithm("graph-filter", params).fit(train)
    m.warm_up()
    rng = np.random.default_rng(0)
    users = rng.choice(train.shape[0], 100, replace=False)
    live, expl = [], []
    with threadpool_limits(1, "blas"):
        for u in users:
            row = train[u]
            t = time.perf_counter()
            s = m.scores(row)[0]
            live.append(time.perf_counter() - t)
            items = np.argpartition(-s, 10)[:10]
            t = time.perf_counter()
            m.contributions(row, items, int(u))
            expl.append(time.perf_counter() - t)
    log(
        json.dumps(params),
        f"live score median {1e3 * np.median(live):.1f} ms p95 {1e3 * np.percentile(live, 95):.1f}; "
        f"contributions(10 items) median {1e3 * np.median(expl):.1f} ms p95 {1e3 * np.percentile(expl, 95):.1f}",
    )


if __name__ == "__main__":
    main()
