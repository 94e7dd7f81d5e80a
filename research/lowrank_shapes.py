"""Shapes of the rank-k sharpening step (validation only): score = B - B V f(Σ²) Vᵀ.

One Euler step of BSPM's sharpening is f(λ) = sλ; the exact solution of its ODE over time t
is f(λ) = 1 - exp(-tλ); a power f(λ) = sλ^p moves the weight towards the top directions.
All cost the same to serve (only the weights per direction change). Directions of singular
value 1 are left out, as in the package. Argument: JSON {"k", "a", "b", "c", "w", "shapes": [[name, param, s], ...]}.
"""
from lib import *
import json
R, T, Rt, Rv = load_all()
di, du = degrees(Rt); RtT = Rt.T.tocsr()
users = validation_users(R.shape[0])
H = Rt[users].tocsr(); tgt = Rv[users].tocsr()
g = json.loads(sys.argv[1])
cache = f"Vs_val_{g['k']}.npz"
if os.path.exists(cache):
    z = np.load(cache); V, sv = z["V"], z["s"]
else:
    V, sv = svd_V(Rt, g["k"]); np.savez(cache, V=V, s=sv)
lam = np.where(sv < 0.999, sv ** 2, 0.0)
S = l1(walk(H, Rt, RtT, di, du, g["a"], g["b"], g["c"])) + g["w"] * l1(lowpass(H, V, di, 0.5))
SV = S @ V
for name, param, s in g["shapes"]:
    f = {"euler": lambda: s * lam, "exp": lambda: 1 - np.exp(-param * lam), "power": lambda: s * lam ** param}[name]()
    f = np.where(lam > 0, f, 0.0)
    print(json.dumps(dict(shape=name, param=param, s=s, RN=metrics(S - (SV * f) @ V.T, H, tgt))), flush=True)
