"""Shapes of the rank-k sharpening step (validation only): score = B - B V f(Σ²) Vᵀ.

One Euler step of BSPM's sharpening is f(λ) = sλ; the exact solution of its ODE over time t
is f(λ) = 1 - exp(-tλ); a power f(λ) = sλ^p moves the weight towards the top directions.
All cost the same to serve (only the weights per direction change). Directions of singular
value 1 are left out, as in the package. Argument: JSON {"k", "a", "b", "c", "w", "shapes": [[name, param, s], ...]}
with name euler (param unused), exp (param t) or power (param p).

    python -m research.lowrank_shapes '{"k":800,"a":0.5,"b":0.5,"c":0.3,"w":0.5,"shapes":[["euler",1,0.7],["exp",0.7,1],["exp",1.0,1],["exp",1.5,1],["power",2,0.7],["power",2,1.0],["power",3,1.0],["power",0.5,0.5]]}'
"""

import json

import numpy as np

from research.common import cached_svd, degrees, l1, load_all, lowpass, metrics, parser, run_log, validation_users, walk


def step_weights(name: str, param: float, s: float, lam: np.ndarray) -> np.ndarray:
    """f(λ) per direction (0 where λ is 0, the left-out directions)."""
    if name == "euler":
        f = s * lam
    elif name == "exp":
        f = 1 - np.exp(-param * lam)
    elif name == "power":
        f = s * lam**param
    else:
        raise SystemExit(f"unknown shape {name!r}: euler, exp or power")
    return np.where(lam > 0, f, 0.0)


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
    V, sv = cached_svd(Rt, g["k"], "val")
    lam = np.where(sv < 0.999, sv**2, 0.0)
    S = l1(walk(H, Rt, RtT, di, du, g["a"], g["b"], g["c"])) + g["w"] * l1(lowpass(H, V, di, 0.5))
    SV = S @ V
    for name, param, s in g["shapes"]:
        f = step_weights(name, param, s, lam)
        log(json.dumps(dict(shape=name, param=param, s=s, RN=metrics(S - (SV * f) @ V.T, H, tgt))))


if __name__ == "__main__":
    main()
