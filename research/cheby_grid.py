"""ChebyCF-family grid on the validation split (protocol of gf_grid: val = 20% per-user
hold-out of train, seed 0; 6,000 users, seed 1; all items ranked except val-train items),
and the ChebyCF functions blend_grid and final_blend use.

ChebyCF (Kim et al., SIGIR 2025), re-implemented in numpy/scipy:
    x      = r D_i^-bp                                   (pre degree normalisation)
    cheb   = sum_k c_k T_k(Lt) x,  Lt = I - 2 Rn^T Rn,  Rn = D_u^-1/2 R D_i^-1/2
             c_k: Chebyshev interpolation (K+1 nodes) of the "plateau" target
             h(x) = 1/2 - 1/2 sign(x)|x|^phi (x = 1 - 2 sigma^2), optionally times (1 - s sigma^2)
    ideal  = x V_eta V_eta^T   (top-eta right singular vectors of Rn)
    score  = (cheb + alpha * ideal) D_i^+bq              (post degree normalisation)
Optional blend with the current model's walk L(r) (row-L1-normalised parts):
    score' = score/|score|_1 + wl * L/|L|_1
Everything is linear in r.

    python -m research.cheby_grid <bp> <Kmax> '<json list of configs>' [chunk]
    python -m research.cheby_grid 0.4 10 "$(cat research/configs/s1.json)"     # the study's grid

config keys: K, phi, eta, alpha, bq, [s], [wl, a, b, c]
"""

import json
import math
import time

import numpy as np

from research.common import (
    cached_svd,
    degrees,
    hits,
    l1,
    load_all,
    op,
    parser,
    recall_ndcg,
    run_log,
    validation_users,
    walk,
)


def plateau(K, phi, s=0.0):
    x = np.round(np.cos((K - np.arange(K + 1)) / K * math.pi), 3)
    out = np.where(x < 0, np.abs(x) ** phi * 0.5 + 0.5, -(np.abs(x) ** phi) * 0.5 + 0.5)
    out = np.round(out, 3)
    if s:
        out = out * (1 - s * (1 - x) / 2)
    return out


def cheby_coeffs(K, phi, s=0.0):
    """Exactly the ChebyCF procedure (targets from plateau(), K+1 Chebyshev nodes)."""
    nodes = np.cos(((K + 1) + 0.5 - np.arange(1, K + 2)) / (K + 1) * math.pi)
    tgt = plateau(K, phi, s)
    Tn = [np.ones_like(nodes), nodes]
    for _ in range(2, K + 1):
        Tn.append(2 * nodes * Tn[-1] - Tn[-2])
    c = np.array([(Tn[k] * tgt).sum() for k in range(K + 1)]) * (2 / (K + 1))
    c[0] /= 2
    return c


def lt(X, Rm, RmT, di, du):
    """X Lt = X - 2 X Rn^T Rn."""
    return X - 2 * op(X, Rm, RmT, di, du, 0.5, 1.0, 0.5)


def cheb_bases(X, Kmax, Rm, RmT, di, du):
    """[T_0(Lt) x, ..., T_Kmax(Lt) x] for the rows x of X."""
    B = [X, lt(X, Rm, RmT, di, du)]
    for _ in range(2, Kmax + 1):
        B.append(2 * lt(B[-1], Rm, RmT, di, du) - B[-2])
    return B


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("bp", type=float)
    cli.add_argument("Kmax", type=int)
    cli.add_argument("configs", type=json.loads)
    cli.add_argument("chunk", nargs="?", type=int, default=1000)
    args = cli.parse_args()
    bp, Kmax, cfgs, chunk = args.bp, args.Kmax, args.configs, args.chunk
    log = run_log(__file__)
    R, _, Rt, Rv = load_all()
    di, du = degrees(Rt)
    RtT = Rt.T.tocsr()
    users = validation_users(R.shape[0])
    V, _ = cached_svd(Rt, 1024, "val")
    etas = sorted({c["eta"] for c in cfgs if c.get("alpha", 0) > 0})
    walks = sorted({(c["a"], c["b"], c["c"]) for c in cfgs if c.get("wl")})
    acc = [[] for _ in cfgs]
    t0 = time.time()
    for s0 in range(0, len(users), chunk):
        ub = users[s0 : s0 + chunk]
        H = Rt[ub].tocsr()
        tgt = Rv[ub].tocsr()
        Xs = H.multiply(di[None, :] ** -bp).tocsr()
        B = cheb_bases(Xs.toarray(), Kmax, Rt, RtT, di, du)
        Pj = Xs @ V
        ideal = {e: Pj[:, :e] @ V[:, :e].T for e in etas}
        W = {w: l1(walk(H, Rt, RtT, di, du, *w)) for w in walks}
        tb = time.time() - t0
        for i, c in enumerate(cfgs):
            co = cheby_coeffs(c["K"], c["phi"], c.get("s", 0.0))
            S = co[0] * B[0]
            for k in range(1, c["K"] + 1):
                S += co[k] * B[k]
            if c.get("alpha", 0) > 0:
                S += c["alpha"] * ideal[c["eta"]]
            S *= di ** c["bq"]
            if c.get("wl"):
                S = l1(S) + c["wl"] * W[(c["a"], c["b"], c["c"])]
            acc[i].append(hits(S, H, tgt))
        log(f"chunk {s0}: bases+parts {tb:.0f}s, total {time.time() - t0:.0f}s")
        del B, ideal, W
    res = []
    for c, parts in zip(cfgs, acc):
        r, n = recall_ndcg(parts)
        d = dict(bp=bp, **c, R=round(r, 4), N=round(n, 4))
        res.append(d)
        log(json.dumps(d))
    res.sort(key=lambda d: -(d["R"] + d["N"]))
    log("TOP5", *res[:5], sep="\n")


if __name__ == "__main__":
    main()
