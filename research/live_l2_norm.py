"""Would an L2-normalised low-pass part cost accuracy? (issue 20: a live answer in 2 ms)

    python -m research.live_l2_norm MODEL_FOLDER [--customers 6000]

The graph-filter divides its low-pass part I(r) by |I(r)|₁, a sum over every item, so a
live answer must read all of V (`research.live_norm`). Its L2 norm is computable in the
basis: |I(r)|₂² = x Vᵀ D_out² V xᵀ with an r x r matrix, no pass over V. This scores
Gowalla's test customers (a seeded sample; the model folder's fitted parts, trained on
``train.txt`` with ids ``u<user>``/``i<item>``) with the shipped L1 norm and with
c·|I(r)|₂·m, c the median ratio |I|₁/|I|₂ over the sample (so m = 1 weighs the part as
the L1 norm does on average) and m in 0.25, 0.5, 1, 2, and prints Recall@20 and NDCG@20 of each.
"""

import time

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recommender.artifacts import load_model
from research.common import DATA, hits, parser, recall_ndcg, run_log

MULTIPLIERS = (0.25, 0.5, 1.0, 2.0)


def test_matrix(model, path) -> sp.csr_matrix:
    rows, cols = [], []
    for line in path.read_text().splitlines():
        user, *items = line.split()
        customer = model.customers.get(f"u{user}")
        for item in items:
            index = model.items.get(f"i{item}")
            if customer >= 0 and index >= 0:
                rows.append(customer)
                cols.append(index)
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(model.customers), len(model.items)))


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("model", help="a graph-filter folder trained on Gowalla's train.txt")
    cli.add_argument("--customers", type=int, default=6000)
    cli.add_argument("--chunk", type=int, default=256)
    args = cli.parse_args()
    log = run_log(__file__)
    model = load_model(args.model)
    gf = model.algorithm
    target = test_matrix(model, DATA / "test.txt")
    users = np.flatnonzero(np.diff(target.indptr) > 0)
    users = np.sort(np.random.default_rng(0).choice(users, min(args.customers, len(users)), replace=False))
    vectors, w, s = gf.singular_vectors_, gf.config.low_rank_weight, gf.sharpening_
    parts: dict[str, list] = {}
    ratio = None
    started = time.perf_counter()
    with threadpool_limits(2, "blas"):
        for start in range(0, len(users), args.chunk):
            chunk = users[start : start + args.chunk]
            history = model.history[chunk]
            binary = sp.csr_matrix(history, dtype=np.float32, copy=True)
            binary.data[:] = 1.0
            walk, walk_norm = gf._walk(binary)
            projected = binary.multiply(gf.low_rank_in_[None, :]).tocsr() @ vectors
            smooth = (projected @ vectors.T) * gf.low_rank_out_
            l1 = np.abs(smooth).sum(axis=1, keepdims=True)
            l2 = np.sqrt((smooth.astype(np.float64) ** 2).sum(axis=1, keepdims=True))
            if ratio is None:
                ratio = float(np.median(l1 / l2))
            walk_in_basis = binary.multiply(gf.history_weight_[None, :]).tocsr() @ gf.walk_basis_ / walk_norm
            smooth_in_basis = projected @ gf.low_rank_gram_
            norms = {"L1 (shipped)": l1, **{f"L2 x {m}": (ratio * m * l2).astype(np.float32) for m in MULTIPLIERS}}
            for name, norm in norms.items():
                scores = walk / walk_norm + w * smooth / norm
                if s and gf.walk_basis_.shape[1]:
                    scores -= s * (((walk_in_basis + smooth_in_basis * (w / norm)) * gf.step_weights_) @ vectors.T)
                parts.setdefault(name, []).append(hits(scores, history, target[chunk]))
    log(f"{model.version}: {len(users)} Gowalla test customers, c = median |I|₁/|I|₂ = {ratio:.1f} ({time.perf_counter() - started:.0f} s)")
    for name, found in parts.items():
        recall, ndcg = recall_ndcg(found)
        log(f"{name:14s} Recall@20 {recall:.4f}  NDCG@20 {ndcg:.4f}")


if __name__ == "__main__":
    main()
