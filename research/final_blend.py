"""Test evaluation of a blend_grid config (all 29,858 users, fit on full train, fit timed),
or the same blend on the validation split (all users) or on the demo store.

    python -m research.final_blend '<base json as blend_grid>' '<cfg json: w,wc,s1,s2,gamma>' [--val | --val-only | --demo]

--val: also the config on the validation split, all users (fit on val-train); --val-only: only
that. --demo: only the demo store (5,000 x 2,000, seed 42, random 20% split seed 1), with the
low-pass rank k and the ChebyCF ideal rank eta scaled to its catalogue: round(k * 2,000 / 40,981),
so Gowalla's 800 and 512 become 39 and 25.
Fit = item/customer degrees + one randomized SVD of D_u^-1/2 R D_i^-1/2 at rank max(k, eta)
(the low-pass part and the ChebyCF ideal part share it: both use its top singular vectors).
"""

import json
import os
import time

import numpy as np
import scipy.sparse as sp

from research.cheby_grid import cheb_bases, cheby_coeffs
from research.common import (
    GOWALLA_ITEMS,
    degrees,
    demo_split,
    eval_batched,
    l1,
    load_all,
    lowpass,
    op,
    parser,
    run_log,
    svd_V,
    walk,
)


def fit_blend(train, g, c, k, eta):
    """Fit the blend (base ``g``, config ``c``, low-pass rank ``k``, ideal rank ``eta``) on the
    binary ``train``; returns ``score(history rows, users)`` -> dense scores, and the SVD rank."""
    train = sp.csr_matrix(train, dtype=np.float32, copy=True)
    train.data[:] = 1
    ch = g.get("cheb")
    di, du = degrees(train)
    RT = train.T.tocsr()
    kmax = max(k, eta if ch and c.get("wc") else 0)
    V, _ = svd_V(train, kmax)
    Vk = np.ascontiguousarray(V[:, :k])
    co = cheby_coeffs(ch["K"], ch["phi"], ch.get("s", 0.0)) if ch else None

    def score(H, ub):
        H = sp.csr_matrix(H, dtype=np.float32, copy=True)
        H.data[:] = 1
        B = l1(walk(H, train, RT, di, du, g["a"], g["b"], g["c"])) + c.get("w", 0.5) * l1(lowpass(H, Vk, di, 0.5))
        if c.get("wc"):
            Xs = H.multiply(di[None, :] ** -ch["bp"]).tocsr()
            Cb = cheb_bases(Xs.toarray(), ch["K"], train, RT, di, du)
            C = sum(a_ * b_ for a_, b_ in zip(co, Cb))
            del Cb
            if ch.get("alpha", 0) > 0:
                Vc = V[:, :eta]
                C += ch["alpha"] * ((Xs @ Vc) @ Vc.T)
            B += c["wc"] * l1(C * di ** ch["bq"])
        S = B
        if c.get("s1") or c.get("s2"):
            P1 = op(B, train, RT, di, du, 0.5, 1.0, 0.5)
            S = B - c.get("s1", 0) * P1
            if c.get("s2"):
                S += c["s2"] * op(P1, train, RT, di, du, 0.5, 1.0, 0.5)
        if c.get("gamma"):
            S *= di ** -c["gamma"]
        return S

    return score, kmax


def run(log, Rtrain, Rtarget, tag, g, c, k, eta):
    t = time.perf_counter()
    score, kmax = fit_blend(Rtrain, g, c, k, eta)
    fit_s = time.perf_counter() - t
    t = time.time()
    r, n = eval_batched(score, Rtrain, Rtarget, batch=1000)
    ev = time.time() - t
    log(
        json.dumps(
            dict(
                tag=tag,
                base=g,
                cfg=c,
                k=k,
                eta=eta,
                R=round(r, 4),
                N=round(n, 4),
                fit_s=round(fit_s, 1),
                svd_rank=kmax,
                eval_s=round(ev, 1),
                load=os.getloadavg(),
            )
        )
    )


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("base", type=json.loads)
    cli.add_argument("cfg", type=json.loads)
    where = cli.add_mutually_exclusive_group()
    where.add_argument("--val", action="store_true", help="validation split (all users) and test")
    where.add_argument("--val-only", action="store_true", help="validation split (all users) only")
    where.add_argument("--demo", action="store_true", help="the demo store only, ranks scaled to its catalogue")
    args = cli.parse_args()
    g, c = args.base, args.cfg
    eta = g["cheb"]["eta"] if g.get("cheb") else 0
    log = run_log(__file__)
    if args.demo:
        train, test = demo_split()

        def scaled(rank):
            return max(1, int(round(rank / GOWALLA_ITEMS * train.shape[1])))

        run(log, train, test, "DEMO", g, c, scaled(g["k"]), scaled(eta))
        return
    R, T, Rt, Rv = load_all()
    if args.val or args.val_only:
        run(log, Rt, Rv, "VAL(all users)", g, c, g["k"], eta)
    if not args.val_only:
        run(log, R, T, "TEST", g, c, g["k"], eta)


if __name__ == "__main__":
    main()
