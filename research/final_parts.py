"""Test evaluation (fit on full train, all 29,858 users) of a parts_grid config.

    python -m research.final_parts '<parts json>' '<config json>' [--val-only]
    python -m research.final_parts "$(cat research/configs/p5.json)" '{"parts":{"W0":1,"I0":0.5},"s1":0.85}'

--val-only: fit on val-train, evaluate the validation split on all users instead (no test).
Fit = degrees + randomized SVD of D_u^-1/2 R D_i^-1/2 at the largest low-pass rank + the median
customer history length m of the fitted matrix (the reference for "dexp"/"sexp"; in parts_grid
m is the median over the 6,000 evaluated validation users' val-train rows).
"""

import json
import os
import time

import numpy as np

from research.common import degrees, eval_batched, l1, load_all, op, parser, run_log, svd_V, walk


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("parts", type=json.loads)
    cli.add_argument("config", type=json.loads)
    cli.add_argument("--val-only", action="store_true", help="the validation split (all users) instead of test")
    args = cli.parse_args()
    parts_spec, c = args.parts, args.config
    log = run_log(__file__)
    R, T, Rt, Rv = load_all()
    tag = "TEST"
    if args.val_only:
        R, T, tag = Rt, Rv, "VAL(all users)"
    t = time.perf_counter()
    di, du = degrees(R)
    RT = R.T.tocsr()
    kmax = max(p["k"] for n, p in parts_spec.items() if p["type"] == "low" and n in c["parts"])
    V, sv = svd_V(R, kmax)
    sig = sv / sv.max()
    med = float(np.median(np.diff(R.indptr)))
    fit_s = time.perf_counter() - t

    def score(H, ub):
        rel = np.diff(H.indptr).astype(np.float32)[:, None] / med
        S = None
        st = c.get("s1", 0) * rel ** c.get("sexp", 0.0)
        for n, wt in c["parts"].items():
            p = parts_spec[n]
            if p["type"] == "walk":
                X = l1(walk(H, R, RT, di, du, p["a"], p["b"], p["c"]))
            else:
                k = p["k"]
                wts = sig[:k] ** p.get("gamma", 0.0)
                Pj = H.multiply(di[None, :] ** -0.5).tocsr() @ V[:, :k]
                X = l1(((Pj * wts) @ V[:, :k].T) * di ** p.get("c2", 0.5))
            X *= wt * rel ** c.get("dexp", {}).get(n, 0.0)
            S = X if S is None else S + X
        if c.get("s1"):
            S -= st * op(S, R, RT, di, du, 0.5, 1.0, 0.5)
        return S

    t = time.time()
    r, n = eval_batched(score, R, T, batch=1000)
    ev = time.time() - t
    log(
        json.dumps(
            dict(
                tag=tag,
                parts=parts_spec,
                cfg=c,
                R=round(r, 4),
                N=round(n, 4),
                fit_s=round(fit_s, 1),
                median_len=med,
                eval_s=round(ev, 1),
                load=os.getloadavg(),
            )
        )
    )


if __name__ == "__main__":
    main()
