"""Sharpening with the rank-k part of P instead of the exact two-hop P (validation only).

P = Ñᵀ Ñ with Ñ = D_u^-½ R D_i^-½, so its rank-k part is V diag(σ²) Vᵀ from the same SVD the
low-pass filter already computes. If it sharpens as well as the exact P, a sharpened score's
attribution to purchases becomes a rank-k dot product (batchable for every cached top list)
instead of a four-hop walk. Argument: JSON {"k", "a", "b", "c", "w", "s_grid", "sharpen_ranks"},
optionally "skip_exact": true, and "drop_stationary": true to also try the step without the
directions of singular value 1 (the stationary walk of each connected component).

    python -m research.lowrank_sharpen '{"k":800,"a":0.5,"b":0.5,"c":0.3,"w":0.5,"s_grid":[0.5,0.85,1.0,1.3],"sharpen_ranks":[800,1024]}'
    python -m research.lowrank_sharpen '{"k":800,"a":0.5,"b":0.5,"c":0.3,"w":0.5,"s_grid":[0.7,0.85,1.0],"sharpen_ranks":[800],"skip_exact":true,"drop_stationary":true}'

The "exact P" rows are also the raw sharpening step of the first round (score = B - s BP).
"""

import json
import time

import numpy as np

from research.common import cached_svd, degrees, l1, load_all, lowpass, metrics, op, parser, run_log, validation_users, walk


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("config", type=json.loads)
    g = cli.parse_args().config
    log = run_log(__file__)
    R, _, Rt, Rv = load_all()
    di, du = degrees(Rt)
    RtT = Rt.T.tocsr()
    users = validation_users(R.shape[0])
    H = Rt[users].tocsr()
    tgt = Rv[users].tocsr()
    kmax = max([g["k"], *g["sharpen_ranks"]])
    t = time.time()
    V, sv = cached_svd(Rt, kmax, "val")
    log(f"svd {kmax} (or its cache): {time.time() - t:.1f} s")
    S = l1(walk(H, Rt, RtT, di, du, g["a"], g["b"], g["c"])) + g["w"] * l1(lowpass(H, V[:, : g["k"]], di, 0.5))
    log(json.dumps(dict(variant="blend only", RN=metrics(S, H, tgt))))
    if not g.get("skip_exact"):
        step = op(S, Rt, RtT, di, du, 0.5, 1.0, 0.5)
        for s in g["s_grid"]:
            log(json.dumps(dict(variant="exact P", s=s, RN=metrics(S - s * step, H, tgt))))
        del step
    log("top singular values", sv[:5].round(5).tolist())
    for k in g["sharpen_ranks"]:
        for drop in [False, True] if g.get("drop_stationary") else [False]:
            keep = np.arange(k)[sv[:k] < 0.999] if drop else np.arange(k)
            step = ((S @ V[:, keep]) * sv[keep] ** 2) @ V[:, keep].T
            for s in g["s_grid"]:
                name = f"rank-{k} P" + (f" without the {k - len(keep)} stationary directions" if drop else "")
                log(json.dumps(dict(variant=name, s=s, RN=metrics(S - s * step, H, tgt))))


if __name__ == "__main__":
    main()
