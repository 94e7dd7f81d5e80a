"""How often would an incremental live answer be provably exact, if the low-pass part were
L2-normalised? (issue 20: a live answer in 2 ms without reading V)

    python -m research.live_incremental MODEL_FOLDER [--draws 100] [--top-m 50] [--top-k 50 200]

With the low-pass part divided by c·|I(r)|₂ (computable in the basis, `research.live_l2_norm`)
every score is A(r)·P_i(r) + B(r)·Q_i(r) with both weights known without V and P, Q linear
in the history r: P(h+e) = P(h) + Σ_j P(e_j), the same for Q. The design simulated here:

* per training customer h (at training, beside the top lists): the top-M items and the
  largest P_i(h) and |Q_i(h)| outside them;
* per item j (at training, about two item x item products): the top-K items of P(e_j) and
  of |Q(e_j)| and the largest values outside them;
* live, for new items e: exact scores of the candidates (the cached top-M and every new
  item's top-K rows; cheap: a few hundred dot products with V's rows), and for every other
  item the bound (A'/A)·s_M + |B' - B·A'/A|·maxQ_h (or A'·maxP_h + B'·maxQ_h, the smaller)
  + Σ_j (A'·maxP_j + B'·maxQ_j); the answer is exact when the n-th candidate scores above it,
  otherwise it falls back to full scoring.

For random training customers and 1-5 random new items, it computes everything densely
and prints the share of answers the bound certifies for each K (the exact-hit rate), and
checks that every certified answer equals the dense top-n.
"""

import time

import numpy as np
import scipy.sparse as sp

from recommender.algorithms import graph_filter_live as live
from recommender.artifacts import load_model
from research.common import parser, run_log


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("model", help="a trained graph-filter model folder")
    cli.add_argument("--draws", type=int, default=100)
    cli.add_argument("--n", type=int, default=20)
    cli.add_argument("--top-m", type=int, default=50)
    cli.add_argument("--top-k", type=int, nargs="+", default=[50, 200])
    cli.add_argument("--profile", action="store_true", help="profile the live step of the last draw")
    cli.add_argument("--time-k", type=int, default=200, help="time the live step with this K (one of --top-k)")
    args = cli.parse_args()
    log = run_log(__file__)
    model = load_model(args.model)
    gf = model.algorithm
    vectors, out, lin = gf.singular_vectors_, gf.low_rank_out_, gf.low_rank_in_
    w, s = gf.config.low_rank_weight, gf.sharpening_
    mass = gf.history_weight_.astype(np.float64) * gf.walk_mass()

    def parts(items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P and Q (dense, float64) of the binary history ``items``."""
        row = sp.csr_matrix((np.ones(len(items), np.float32), items, [0, len(items)]), shape=(1, len(model.items)))
        walk = gf._walk(row)[0][0].astype(np.float64)
        x = lin[items] @ vectors[items]
        u = gf.history_weight_[items] @ gf.walk_basis_[items]
        p = walk - s * (vectors @ (u * gf.step_weights_))
        q = (vectors @ x) * out - s * (vectors @ ((x @ gf.low_rank_gram_) * gf.step_weights_))
        return p, q.astype(np.float64)

    def weights(items: np.ndarray, c: float) -> tuple[float, float]:
        smooth_l2 = np.linalg.norm(((vectors @ (lin[items] @ vectors[items])) * out).astype(np.float64))
        return 1.0 / mass[items].sum(), w / (c * smooth_l2)

    rng = np.random.default_rng(0)
    sample = rng.choice(len(model.customers), 50, replace=False)
    ratios = []
    for customer in sample:
        items = model.history.indices[model.history.indptr[customer] : model.history.indptr[customer + 1]]
        smooth = (vectors @ (lin[items] @ vectors[items])) * out
        ratios.append(np.abs(smooth).sum() / np.linalg.norm(smooth))
    c = float(np.median(ratios))
    gram2 = vectors.T @ (vectors * (out.astype(np.float64) ** 2)[:, None].astype(np.float32))  # |I(r)|₂² = x G₂ xᵀ
    gram_stepped = gf.low_rank_gram_ * gf.step_weights_[None, :]
    timings, agree = [], 0

    def live_step(old, new, cached, state, lists, item_bounds):
        """The live part of the design, as a server would run it: both weights from the basis,
        exact scores of the candidates only, the bound, the top-n. Returns (top-n or None)."""
        both = np.union1d(old, new)
        a_new = 1.0 / mass[both].sum()
        x = lin[both] @ vectors[both]
        b_new = w / (c * np.sqrt(float(x @ gram2 @ x)))
        u = gf.history_weight_[both] @ gf.walk_basis_[both]
        candidates = np.setdiff1d(np.union1d(cached, np.concatenate(lists)), both)
        co_buyers, counts = live._gather(gf.bought_by_, both)
        reach = np.bincount(co_buyers, weights=np.repeat(gf.history_weight_[both].astype(np.float64), counts), minlength=gf.buyers_.shape[0])
        reach *= gf.co_buyer_weight_
        buyers, counts = live._gather(gf.bought_by_, candidates)
        walk = np.bincount(np.repeat(np.arange(len(candidates)), counts), weights=reach[buyers], minlength=len(candidates))
        walk *= gf.result_weight_[candidates]
        rows = vectors[candidates]
        p = walk - s * (rows @ (u * gf.step_weights_))
        q = out[candidates] * (rows @ x) - s * (rows @ (x @ gram_stepped))
        scores = a_new * p + b_new * q
        top = np.argsort(-scores, kind="stable")[: args.n]
        a_old, b_old, s_m, max_p_h, max_q_h = state
        bound = min((a_new / a_old) * s_m + abs(b_new - b_old * a_new / a_old) * max_q_h, a_new * max_p_h + b_new * max_q_h)
        bound += sum(a_new * max_p + b_new * max_q for max_p, max_q in item_bounds)
        return candidates[top] if scores[top[-1]] > bound else None

    certified = {k: 0 for k in args.top_k}
    wrong = {k: 0 for k in args.top_k}
    sizes: dict[int, list[int]] = {k: [] for k in args.top_k}
    for draw in range(args.draws):
        customer = int(rng.integers(len(model.customers)))
        old = model.history.indices[model.history.indptr[customer] : model.history.indptr[customer + 1]].astype(np.int64)
        new = np.setdiff1d(rng.choice(len(model.items), 1 + draw % 5, replace=False), old)
        if not len(new):
            continue
        both = np.union1d(old, new)
        p_old, q_old = parts(old)
        a_old, b_old = weights(old, c)
        a_new, b_new = weights(both, c)
        scores_old = a_old * p_old + b_old * q_old
        scores_old[old] = -np.inf
        cached = np.argsort(-scores_old)[: args.top_m]
        outside = np.ones(len(model.items), bool)
        outside[cached] = False
        outside[old] = False
        s_m = scores_old[cached[-1]]
        max_p_h, max_q_h = p_old[outside].max(), np.abs(q_old[outside]).max()
        bound_h = min((a_new / a_old) * s_m + abs(b_new - b_old * a_new / a_old) * max_q_h, a_new * max_p_h + b_new * max_q_h)
        rows = [parts(np.array([j])) for j in new]
        p_new = p_old + sum(p for p, _ in rows)
        q_new = q_old + sum(q for _, q in rows)
        truth = a_new * p_new + b_new * q_new
        truth[both] = -np.inf
        best = np.argsort(-truth, kind="stable")[: args.n]
        for k in args.top_k:
            candidates = set(cached.tolist())
            bound = bound_h
            for p, q in rows:
                by_p, by_q = np.argsort(-p)[:k], np.argsort(-np.abs(q))[:k]
                rest_p, rest_q = np.ones(len(p), bool), np.ones(len(q), bool)
                rest_p[by_p] = False
                rest_q[by_q] = False
                candidates |= set(by_p.tolist()) | set(by_q.tolist())
                bound += a_new * p[rest_p].max() + b_new * np.abs(q[rest_q]).max()
            candidates = np.array(sorted(candidates - set(both.tolist())))
            sizes[k].append(len(candidates))
            ranked = candidates[np.argsort(-truth[candidates], kind="stable")][: args.n]
            if truth[ranked[-1]] > bound:
                certified[k] += 1
                wrong[k] += not np.array_equal(np.sort(ranked), np.sort(best))
            if k == args.time_k:
                lists, item_bounds = [], []
                for p, q in rows:  # what training would store per item: indices and two bounds
                    by_p, by_q = np.argsort(-p)[:k], np.argsort(-np.abs(q))[:k]
                    rest = np.ones(len(p), bool)
                    rest[by_p] = False
                    max_p = p[rest].max()
                    rest[:] = True
                    rest[by_q] = False
                    item_bounds.append((max_p, np.abs(q[rest]).max()))
                    lists.append(np.union1d(by_p, by_q))
                state = (a_old, b_old, s_m, max_p_h, max_q_h)
                started = time.perf_counter()
                found = live_step(old, new, cached, state, lists, item_bounds)
                timings.append((time.perf_counter() - started) * 1e3)
                agree += found is not None and np.array_equal(found, best)
    log(f"{model.version}: {args.draws} draws, 1-5 new items, n={args.n}, cached top-{args.top_m}, L2 norm (c = {c:.1f})")
    if args.profile and timings:
        import cProfile
        import pstats

        profile = cProfile.Profile()
        profile.enable()
        for _ in range(20):
            live_step(old, new, cached, state, lists, item_bounds)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(12)
    for k in args.top_k:
        log(f"top-{k} rows per item: certified exact {certified[k]}/{args.draws} (certified but wrong: {wrong[k]}); "
            f"candidates scored: median {np.median(sizes[k]):.0f}, max {max(sizes[k])}")
    if timings:
        log(f"live step at K={args.time_k} (weights, candidates' exact scores, bound, top-{args.n}; one BLAS thread): "
            f"median {np.median(timings):.2f} ms, p90 {np.percentile(timings, 90):.2f} ms; "
            f"answers it certified that equal the dense top-{args.n}: {agree}/{args.draws}")


if __name__ == "__main__":
    main()
