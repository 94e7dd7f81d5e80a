"""Per-request costs of graph-filter on Gowalla, one BLAS thread: live scoring of one history row, and
contributions() of 10 items for a training customer (cached norms)."""
import json, os, sys, time
import numpy as np
from pathlib import Path
from threadpoolctl import threadpool_limits
from recommender.algorithms import create_algorithm
from recommender.evaluation import load_lightgcn, split_matrices
d = Path(os.environ.get("DATA_DIR", Path(__file__).resolve().parents[3] / "shared/data/gowalla"))
train, _ = split_matrices(*load_lightgcn(d / "train.txt", d / "test.txt"))
params = json.loads(sys.argv[1])
with threadpool_limits(2, "blas"):
    m = create_algorithm("graph-filter", params).fit(train)
m.warm_up()
rng = np.random.default_rng(0)
users = rng.choice(train.shape[0], 100, replace=False)
live, expl = [], []
with threadpool_limits(1, "blas"):
    for u in users:
        row = train[u]
        t = time.perf_counter(); s = m.scores(row)[0]; live.append(time.perf_counter() - t)
        items = np.argpartition(-s, 10)[:10]
        t = time.perf_counter(); m.contributions(row, items, int(u)); expl.append(time.perf_counter() - t)
print(json.dumps(params), f"live score median {1e3*np.median(live):.1f} ms p95 {1e3*np.percentile(live,95):.1f}; "
      f"contributions(10 items) median {1e3*np.median(expl):.1f} ms p95 {1e3*np.percentile(expl,95):.1f}")
