"""Blend of the current model's parts with a ChebyCF part, plus 1-2 sharpening steps and an
IPS-style popularity post-factor, on the validation split (protocol of gf_grid).

    B     = L/|L|_1 + w I/|I|_1 + wc C/|C|_1        L: walk(a,b,c); I: low-pass rank k (c2 0.5);
                                                    C: ChebyCF (cheby_grid formula, config `cheb`)
    S     = B - s1 B P + s2 B P^2                   P = D_i^-1/2 R^T D_u^-1 R D_i^-1/2
    score = S * D_i^-gamma
All parts are linear in r (the L1 norms are per-row scalars), so BP, BP^2 are precomputed per part.

    python -m research.blend_grid '<base json: k,a,b,c,cheb:{K,phi,eta,alpha,bp,bq}>' '<json list: w,wc,s1,s2,gamma>'
    python -m research.blend_grid '{"k":800,"a":0.5,"b":0.5,"c":0.3,"cheb":{"K":8,"phi":1.5,"eta":512,"alpha":0.3,"bp":0.4,"bq":0.4}}' \\
        "$(cat research/configs/s2.json)"                                            # the study's first grid

Several ChebyCF variants sharing bp and K: base key "chebs" (list of cheb dicts) instead of "cheb";
a config picks one with "ci" (index, default 0); research/configs/b6.json with c6.json is the
study's second grid.
"""

import json
import time

import numpy as np

from research.cheby_grid import cheb_bases, cheby_coeffs
from research.common import (
    cached_svd,
    degrees,
    hits,
    l1,
    load_all,
    lowpass,
    op,
    parser,
    recall_ndcg,
    run_log,
    validation_users,
    walk,
)


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("base", type=json.loads)
    cli.add_argument("configs", type=json.loads)
    args = cli.parse_args()
    g, cfgs = args.base, args.configs
    log = run_log(__file__)
    chunk = 1000
    R, _, Rt, Rv = load_all()
    di, du = degrees(Rt)
    RtT = Rt.T.tocsr()
    users = validation_users(R.shape[0])
    V, _ = cached_svd(Rt, 1024, "val")
    Vk = np.ascontiguousarray(V[:, : g["k"]])
    chebs = g.get("chebs") or ([g["cheb"]] if g.get("cheb") else [])
    ch = chebs[0] if chebs else None
    need2 = any(c.get("s2", 0) for c in cfgs)
    needC = ch is not None and any(c.get("wc", 0) for c in cfgs)

    def P(Z):
        return op(Z, Rt, RtT, di, du, 0.5, 1.0, 0.5)

    acc = [[] for _ in cfgs]
    t0 = time.time()
    for s0 in range(0, len(users), chunk):
        ub = users[s0 : s0 + chunk]
        H = Rt[ub].tocsr()
        tgt = Rv[ub].tocsr()
        parts = {"L": l1(walk(H, Rt, RtT, di, du, g["a"], g["b"], g["c"])), "I": l1(lowpass(H, Vk, di, 0.5))}
        if needC:
            Xs = H.multiply(di[None, :] ** -ch["bp"]).tocsr()
            B = cheb_bases(Xs.toarray(), max(h["K"] for h in chebs), Rt, RtT, di, du)
            for j, h in enumerate(chebs):
                co = cheby_coeffs(h["K"], h["phi"], h.get("s", 0.0))
                C = sum(c_ * b_ for c_, b_ in zip(co, B))
                if h.get("alpha", 0) > 0:
                    Vc = V[:, : h["eta"]]
                    C += h["alpha"] * ((Xs @ Vc) @ Vc.T)
                parts["C" if j == 0 else f"C{j}"] = l1(C * di ** h["bq"])
                del C
            del B
        P1 = {n: P(x) for n, x in parts.items()}
        P2 = {n: P(x) for n, x in P1.items()} if need2 else {}
        tb = time.time() - t0
        for i, c in enumerate(cfgs):
            cn = "C" if not c.get("ci") else f"C{c['ci']}"
            wts = {"L": 1.0, "I": c.get("w", 0.5), cn: c.get("wc", 0.0)}
            S = np.zeros_like(parts["L"])
            for n, wt in wts.items():
                if wt and n in parts:
                    S += wt * parts[n]
                    if c.get("s1", 0):
                        S -= (wt * c["s1"]) * P1[n]
                    if c.get("s2", 0):
                        S += (wt * c["s2"]) * P2[n]
            if c.get("gamma", 0):
                S *= di ** -c["gamma"]
            acc[i].append(hits(S, H, tgt))
        log(f"chunk {s0}: parts {tb:.0f}s, total {time.time() - t0:.0f}s")
        del parts, P1, P2
    res = []
    for c, found in zip(cfgs, acc):
        r, n = recall_ndcg(found)
        d = dict(**c, R=round(r, 4), N=round(n, 4))
        d["RN"] = round(d["R"] + d["N"], 4)
        res.append(d)
        log(json.dumps(d))
    res.sort(key=lambda d: -d["RN"])
    log("BASE", json.dumps(g))
    log("TOP5", *res[:5], sep="\n")


if __name__ == "__main__":
    main()
