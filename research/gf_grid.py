"""Stage 1: the walk + low-pass family (graph-filter's blend before sharpening) on the
validation split, 108 configs: rank {512, 800, 1024} x a {.5, .75} x b {.5, 1} x
c {.2, .25, .3} x w {.25, .5, 1}; score = L/|L|_1 + w I/|I|_1 with L = walk(a, b, c),
I = low-pass at rank k (c2 0.5).

    python -m research.gf_grid

Computes (or reuses) the rank-1024 SVD of the validation-train matrix in research/cache/,
which cheby_grid, blend_grid and parts_grid use too. Results, best first, also go to
research/logs/gf_grid.json.
"""

import itertools
import json
import time

from research.common import (
    LOGS,
    cached_svd,
    degrees,
    l1,
    load_all,
    lowpass,
    metrics,
    parser,
    run_log,
    validation_users,
    walk,
)


def main() -> None:
    parser(__doc__).parse_args()
    log = run_log(__file__)
    R, _, Rt, Rv = load_all()
    di, du = degrees(Rt)
    RtT = Rt.T.tocsr()
    users = validation_users(R.shape[0])
    H = Rt[users].tocsr()
    tgt = Rv[users].tocsr()
    t = time.time()
    V, _ = cached_svd(Rt, 1024, "val")
    log(f"svd k=1024 on val-train (or its cache) {time.time() - t:.1f}s")
    res = []
    for k in [512, 800, 1024]:
        low = l1(lowpass(H, V[:, :k], di, 0.5))
        for a, b in itertools.product([0.5, 0.75], [0.5, 1.0]):
            walked = walk(H, Rt, RtT, di, du, a, b, 0.0)
            for c in [0.2, 0.25, 0.3]:
                L = l1(walked * di**-c)
                for w in [0.25, 0.5, 1.0]:
                    r, n = metrics(L + w * low, H, tgt)
                    res.append(dict(k=k, a=a, b=b, c=c, w=w, R=r, N=n))
                    log(json.dumps(res[-1]))
            del walked
        del low
    res.sort(key=lambda d: -(d["R"] + d["N"]))
    (LOGS / "gf_grid.json").write_text(json.dumps(res))
    log("TOP5", *res[:5], sep="\n")


if __name__ == "__main__":
    main()
