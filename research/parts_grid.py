"""Generic validation grid over blends of named, row-L1-normalised linear parts plus sharpening
(protocol of gf_grid).  Parts:
    {"type": "walk", "a", "b", "c"}                 L = (r D^-a) R^T D_u^-b R D^-c
    {"type": "low", "k", "c2", "gamma"}             I = (r D^-1/2 V_k) diag((sigma/sigma_1)^gamma) V_k^T D^c2
Config: {"parts": {name: weight}, "s1": step}:  score = B - s1 B P,  B = sum weight * part/|part|_1
  optional per-customer scalars (n_u = history length, m = median n_u of the evaluated users):
  "dexp": {name: delta}  part weight times (n_u/m)^delta;   "sexp": delta  step s1 times (n_u/m)^delta

    python -m research.parts_grid '<json dict of parts>' '<json list of configs>'
    python -m research.parts_grid "$(cat research/configs/p3.json)" "$(cat research/configs/c3.json)"   # the study's grids:
                                                                                # p3+c3, p4+c4, p5+c5
"""

import json
import time

import numpy as np
import scipy.sparse as sp

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


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("parts", type=json.loads)
    cli.add_argument("configs", type=json.loads)
    args = cli.parse_args()
    parts_spec, cfgs = args.parts, args.configs
    log = run_log(__file__)
    chunk = 1000
    R, _, Rt, Rv = load_all()
    di, du = degrees(Rt)
    RtT = Rt.T.tocsr()
    users = validation_users(R.shape[0])
    V, _ = cached_svd(Rt, 1024, "val")
    Rn = (sp.diags(du**-0.5) @ Rt @ sp.diags(di**-0.5)).tocsr().astype(np.float32)
    sig = np.linalg.norm(Rn @ V, axis=0)
    sig = sig / sig.max()
    log("sigma (rel) at 1,128,256,512,800,1024:", sig[[0, 127, 255, 511, 799, 1023]].round(3))
    used = {n for c in cfgs for n in c["parts"]}

    def P(Z):
        return op(Z, Rt, RtT, di, du, 0.5, 1.0, 0.5)

    acc = [[] for _ in cfgs]
    t0 = time.time()
    median_length = np.median(np.diff(Rt[users].indptr))
    for s0 in range(0, len(users), chunk):
        ub = users[s0 : s0 + chunk]
        H = Rt[ub].tocsr()
        tgt = Rv[ub].tocsr()
        X, X1 = {}, {}
        for name, p in parts_spec.items():
            if name not in used:
                continue
            if p["type"] == "walk":
                X[name] = l1(walk(H, Rt, RtT, di, du, p["a"], p["b"], p["c"]))
            else:
                k = p["k"]
                wts = sig[:k] ** p.get("gamma", 0.0)
                Pj = H.multiply(di[None, :] ** -0.5).tocsr() @ V[:, :k]
                X[name] = l1(((Pj * wts) @ V[:, :k].T) * di ** p.get("c2", 0.5))
            X1[name] = P(X[name])
        tb = time.time() - t0
        rel = np.diff(H.indptr).astype(np.float32)[:, None] / median_length
        for i, c in enumerate(cfgs):
            S = np.zeros_like(next(iter(X.values())))
            st = c.get("s1", 0) * rel ** c.get("sexp", 0.0)
            for n, wt in c["parts"].items():
                wt = wt * rel ** c.get("dexp", {}).get(n, 0.0)
                S += wt * X[n]
                if c.get("s1"):
                    S -= (wt * st) * X1[n]
            acc[i].append(hits(S, H, tgt))
        log(f"chunk {s0}: parts {tb:.0f}s, total {time.time() - t0:.0f}s")
        del X, X1
    res = []
    for c, found in zip(cfgs, acc):
        r, n = recall_ndcg(found)
        d = dict(**c, R=round(r, 4), N=round(n, 4))
        d["RN"] = round(d["R"] + d["N"], 4)
        res.append(d)
        log(json.dumps(d))
    res.sort(key=lambda d: -d["RN"])
    log("PARTS", json.dumps(parts_spec))
    log("TOP5", *res[:5], sep="\n")


if __name__ == "__main__":
    main()
