"""Can a live graph-filter answer skip the pass over V? What one to five new purchases do to
|I(r)|₁, the low-pass part's L1 norm that scales every score (issue 20).

    python -m research.live_norm MODEL_FOLDER [--draws 100]

For random training customers h and 1-5 random new items e (one BLAS thread), from the dense
parts (so each draw costs a full scoring):

* how much |I(h+e)|₁ moves from |I(h)|₁, how many items change sign, the negative share;
* the certification ceiling of an incremental answer: without the pass, |I(h+e)|₁ is only
  known to lie in |I(h)|₁ ± |I(e)|₁ (triangle inequality, with |I(h)|₁ cached per customer
  and |I(e)|₁ ≤ Σ_j |I(e_j)|₁ precomputed per item). Every score is linear in the part's
  weight B = w/|I|₁, so the top-n list is certain over the interval exactly when it is the
  same list, in the same order, at both ends. The share of draws where it is bounds from
  above the exact-hit rate of any answer that does not read V (reasons not even counted).
"""

import time

import numpy as np

from recommender.artifacts import load_model
from recommender.topn import history_row
from research.common import parser, run_log


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("model", help="a trained graph-filter model folder")
    cli.add_argument("--draws", type=int, default=100)
    cli.add_argument("--n", type=int, default=20)
    args = cli.parse_args()
    log = run_log(__file__)
    model = load_model(args.model)
    gf = model.algorithm
    vectors, out, lin = gf.singular_vectors_, gf.low_rank_out_, gf.low_rank_in_
    weight, s = gf.config.low_rank_weight, gf.sharpening_
    rng = np.random.default_rng(0)
    moved, flips, negative, certain = [], [], [], 0
    started = time.perf_counter()

    def low_pass(items):
        x = lin[items] @ vectors[items]
        return x, (vectors @ x) * out

    for draw in range(args.draws):
        customer = int(rng.integers(len(model.customers)))
        new = rng.choice(len(model.items), 1 + draw % 5, replace=False)
        row, _ = history_row(model.history, customer, [(int(j), 1.0) for j in new], model.weighting)
        old_items = model.history.indices[model.history.indptr[customer] : model.history.indptr[customer + 1]]
        added = np.setdiff1d(row.indices, old_items)
        _, smooth_old = low_pass(old_items)
        x, smooth = low_pass(row.indices)
        norm_old, norm = np.abs(smooth_old).sum(), np.abs(smooth).sum()
        bound = sum(np.abs(low_pass(np.array([j]))[1]).sum() for j in added)
        moved.append(abs(norm - norm_old) / norm_old)
        flips.append(int(np.sum(np.sign(smooth) != np.sign(smooth_old))))
        negative.append(-smooth[smooth < 0].sum() / norm)
        # score = A·P + B·Q with A = 1/|L|₁ known exactly and B = w/|I|₁ uncertain.
        walk = gf._walk(row.copy())[0][0]
        walk_norm = walk.sum() or 1.0
        walk_in_basis = gf.history_weight_[row.indices] @ gf.walk_basis_[row.indices]
        p = walk - s * (vectors @ (walk_in_basis * gf.step_weights_))
        q = smooth - s * (vectors @ ((x @ gf.low_rank_gram_) * gf.step_weights_))

        low, high = weight / (norm_old + bound), weight / max(norm_old - bound, 1e-12)
        ends = [top_n(p / walk_norm + b * q, row.indices, args.n) for b in (low, high)]
        certain += ends[0] == ends[1]
    log(f"{model.version}: {args.draws} draws, 1-5 new purchases, n={args.n} ({time.perf_counter() - started:.0f} s)")
    log(f"|I|₁ moved: median {np.median(moved):.1%}, p90 {np.percentile(moved, 90):.1%}; items changing sign: median {np.median(flips):,.0f}"
        f" of {len(out):,}; negative share of |I|₁: median {np.median(negative):.0%}")
    log(f"top-{args.n} the same at both ends of |I(h)|₁ ± |I(e)|₁ (certifiable without reading V): {certain}/{args.draws}")


def top_n(scores: np.ndarray, bought: np.ndarray, n: int) -> list[int]:
    scores = scores.copy()
    scores[bought] = -np.inf
    best = np.argpartition(-scores, n)[:n]
    return best[np.argsort(-scores[best], kind="stable")].tolist()


if __name__ == "__main__":
    main()
