"""Can the cached top list bound a live graph-filter answer? (issue 20: a live answer in 2 ms)

    python -m research.live_delta_bound MODEL_FOLDER [--draws 100] [--n 20] [--heads 0 64 256]

A customer with new events h = r + Δ (r: their training history) had their top-M items and
the M-th score s_M(r) computed at training (the top lists). With the low-pass part divided by
c·|I(r)|₂, every score is L_i(r)/|L(r)|₁ + V_i·(out_i y(r) − z(r)), the walk L linear in the
history and |L(r)|₁ a sum over the history's items, so for an item outside the cached list

    score_i(h) <= α s_M(r) + L_i(Δ)/|L(h)|₁ + V_i·(out_i a − b),   α = |L(r)|₁/|L(h)|₁,
    a = y(h) − α y(r),  b = z(h) − α z(r)

and the last term is bounded by Cauchy-Schwarz past a head of V's leading directions (taken
exactly for every item, as the shipped pruning does). For random training customers and 1-5
new items this prints how many items outside the cached list and the walk's best guesses still
reach the n-th best exact score (the items that would have to be scored exactly), and checks the
answer found that way against the dense one. Result on Gowalla (2026-12-04): no better than the
shipped bound (docs/benchmarks.md, "A customer who just bought").
"""

import numpy as np
import scipy.sparse as sp

from recommender.algorithms import graph_filter_live as live
from recommender.artifacts import load_model
from research.common import parser, run_log


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("model")
    cli.add_argument("--draws", type=int, default=100)
    cli.add_argument("--n", type=int, default=20)
    cli.add_argument("--heads", type=int, nargs="+", default=[0, 64, 256])
    args = cli.parse_args()
    log = run_log(__file__)
    model = load_model(args.model)
    gf, lists = model.algorithm, model.top_lists
    if lists is None or not live.weights_known(gf):
        raise SystemExit("needs a graph-filter folder with top lists and the L2-normed low-pass part")
    vectors, out = gf.singular_vectors_, gf.low_rank_out_.astype(np.float64)
    mass = gf.history_weight_.astype(np.float64) * gf.walk_mass()
    n_items = vectors.shape[0]

    def row_of(items: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((np.ones(len(items), np.float32), items, [0, len(items)]), shape=(1, n_items))

    def in_basis(items: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """y, z and |L|₁ of the binary history ``items``."""
        walk_norm = float(mass[items].sum()) or 1.0
        projected, share, step = live._in_basis(gf, row_of(items), items, walk_norm)
        z = np.zeros_like(projected) if step is None else gf.sharpening_ * step
        return (share * projected).astype(np.float64), z.astype(np.float64), walk_norm

    rng = np.random.default_rng(1)
    extra = {head: [] for head in args.heads}
    exact = {head: 0 for head in args.heads}
    for draw in range(args.draws):
        customer = int(rng.integers(len(model.customers)))
        old = np.unique(model.history.indices[model.history.indptr[customer] : model.history.indptr[customer + 1]]).astype(np.int64)
        new = np.setdiff1d(rng.choice(n_items, 1 + draw % 5, replace=False), old)
        both = np.union1d(old, new)
        truth = live.row_scores(gf, row_of(both))[0].astype(np.float64)
        truth[both] = -np.inf
        best = set(np.argsort(-truth, kind="stable")[: args.n].tolist())
        y_old, z_old, norm_old = in_basis(old)
        y_new, z_new, norm_new = in_basis(both)
        alpha = norm_old / norm_new
        a, b = y_new - alpha * y_old, z_new - alpha * z_old
        walk_new = live.walk(gf, new) / norm_new
        cached = lists.items[customer][lists.items[customer] >= 0]
        s_m = float(lists.scores[customer, len(cached) - 1])
        blocked = np.zeros(n_items, dtype=bool)
        blocked[both] = True
        guesses = np.argsort(np.where(blocked, -np.inf, -walk_new), kind="stable")[: 4 * args.n]
        candidates = np.union1d(np.setdiff1d(cached, both), guesses)
        threshold = np.sort(truth[candidates])[-args.n]
        for head in args.heads:
            a_rest, b_rest = a[head:], b[head:]
            rest = np.linalg.norm(vectors[:, head:].astype(np.float64), axis=1)
            spread = rest * np.sqrt(np.maximum(out**2 * (a_rest @ a_rest) - 2 * out * (a_rest @ b_rest) + b_rest @ b_rest, 0.0))
            head_part = 0.0
            if head:
                products = vectors[:, :head].astype(np.float64) @ np.stack([a[:head], b[:head]], axis=1)
                head_part = out * products[:, 0] - products[:, 1]
            bound = alpha * s_m + walk_new + head_part + spread
            bound[blocked] = -np.inf
            bound[cached] = -np.inf
            more = np.setdiff1d(np.flatnonzero(bound >= threshold), candidates)
            extra[head].append(len(more))
            scored = np.union1d(candidates, more)
            exact[head] += set(scored[np.argsort(-truth[scored], kind="stable")[: args.n]].tolist()) == best
    log(f"{model.version}: {args.draws} draws, 1-5 new items, n={args.n}, cached top-{lists.k}, {n_items:,} items")
    for head in args.heads:
        log(f"head {head}: items outside the cached list and the walk's guesses that the bound cannot rule out: "
            f"median {np.median(extra[head]):.0f}, p90 {np.percentile(extra[head], 90):.0f}, max {max(extra[head])}; "
            f"answers equal to the dense top-{args.n}: {exact[head]}/{args.draws}")


if __name__ == "__main__":
    main()
