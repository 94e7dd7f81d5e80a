"""How many items must a live graph-filter answer score exactly, if every other item is
ruled out by a Cauchy-Schwarz bound? (issue 20: a live answer without a pass over V)

    python -m research.live_prune MODEL_FOLDER [--draws 200] [--n 20]

With the low-pass part divided by c·|I(r)|₂ (known in the basis), a live score is
walk_i + V_i·(out_i y - z) with y, z rank-vectors known before any pass, so
|V_i·(out_i y - z)| <= |V_i| sqrt(out_i² |y|² - 2 out_i y·z + |z|²) for every item at the
cost of a few vector operations over the catalogue. For random training customers with
1-5 new purchases, this prints how many items have a bound at or above the exact n-th best
score (the items a pruned answer must score exactly), against the catalogue.
"""

import numpy as np
import scipy.sparse as sp

from recommender.algorithms import graph_filter_live as live
from recommender.artifacts import load_model
from research.common import parser, run_log


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("model")
    cli.add_argument("--draws", type=int, default=200)
    cli.add_argument("--n", type=int, default=20)
    cli.add_argument("--heads", type=int, nargs="+", default=[0, 64, 128, 256],
                     help="leading directions scored exactly for every item; the bound covers the rest")
    args = cli.parse_args()
    log = run_log(__file__)
    model = load_model(args.model)
    gf = model.algorithm
    vectors, out = gf.singular_vectors_, gf.low_rank_out_.astype(np.float64)
    tail_norms = {k: np.linalg.norm(vectors[:, k:], axis=1).astype(np.float64) for k in args.heads}
    rng = np.random.default_rng(0)
    needed = {k: [] for k in args.heads}
    for draw in range(args.draws):
        customer = int(rng.integers(len(model.customers)))
        old = model.history.indices[model.history.indptr[customer] : model.history.indptr[customer + 1]]
        items = np.union1d(old, rng.choice(len(model.items), 1 + draw % 5, replace=False)).astype(np.int64)
        row = sp.csr_matrix((np.ones(len(items), np.float32), items, [0, len(items)]), shape=(1, len(model.items)))
        exact = live.row_scores(gf, row)[0].astype(np.float64)
        walked = live.walk(gf, items)
        walk_norm = float(np.abs(walked).sum()) or 1.0
        x = gf.low_rank_in_[items] @ vectors[items]
        share = gf.config.low_rank_weight / float(gf.basis_norms(x))
        y = share * x.astype(np.float64)
        step = (gf.history_weight_[items] @ gf.walk_basis_[items] / walk_norm + share * (x @ gf.low_rank_gram_)) * gf.step_weights_
        z = gf.sharpening_ * step.astype(np.float64)
        exact[items] = -np.inf
        nth = np.sort(exact)[-args.n]
        for k in args.heads:
            head = out * (vectors[:, :k] @ y[:k]) - vectors[:, :k] @ z[:k] if k else 0.0
            a, b, c = y[k:] @ y[k:], y[k:] @ z[k:], z[k:] @ z[k:]
            upper = walked / walk_norm + head + tail_norms[k] * np.sqrt(np.maximum(out**2 * a - 2 * out * b + c, 0))
            assert (upper[exact > -np.inf] >= exact[exact > -np.inf] - 1e-5 * np.abs(exact[exact > -np.inf]).max()).all()
            upper[items] = -np.inf
            needed[k].append(int((upper >= nth).sum()))
    log(f"{model.version}: {args.draws} draws, 1-5 new purchases, n={args.n}, {len(model.items)} items")
    for k in args.heads:
        found = np.array(needed[k])
        log(f"first {k} directions exact, the rest bounded: items whose bound reaches the exact n-th score: median "
            f"{np.median(found):.0f}, p90 {np.percentile(found, 90):.0f}, max {found.max()} ({np.median(found) / len(model.items):.1%})")

if __name__ == "__main__":
    main()
