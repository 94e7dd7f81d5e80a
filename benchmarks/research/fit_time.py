import sys, time, os
from pathlib import Path
from threadpoolctl import threadpool_limits
from recommender.algorithms import create_algorithm
from recommender.evaluation import load_lightgcn, split_matrices
d = Path(os.environ.get("DATA_DIR", Path(__file__).resolve().parents[3] / "shared/data/gowalla"))
train, test = split_matrices(*load_lightgcn(d / "train.txt", d / "test.txt"))
for rank in map(int, sys.argv[1:]):
    with threadpool_limits(2, "blas"):
        m = create_algorithm("graph-filter", dict(rank=rank, history_exponent=0.5, co_buyer_exponent=0.5, popularity_exponent=0.3, low_rank_weight=0.5, sharpening=0.7))
        t = time.perf_counter(); m.fit(train); total = time.perf_counter() - t
        t = time.perf_counter(); m._training_smooth_norms(m.buyers_); norms = time.perf_counter() - t
    print(f"rank {rank}: fit {total:.1f} s (of which per-customer norms ~{norms:.1f} s); load {os.getloadavg()[0]:.1f}", flush=True)
