"""Sharpening with the rank-k part of P instead of the exact two-hop P (validation only).

P = Ñᵀ Ñ with Ñ = D_u^-½ R D_i^-½, so its rank-k part is V diag(σ²) Vᵀ from the same SVD the
low-pass filter already computes. If it sharpens as well as the exact P, a sharpened score's
attribution to purchases becomes a rank-k dot product (batchable for every cached top list)
instead of a four-hop walk. Argument: JSON {"k", "a", "b", "c", "w", "s_grid", "sharpen_ranks"},
optionally "skip_exact": true, and "drop_stationary": true to also try the step without the
directions of singular value 1 (the stationary walk of each connected component).
"""
from lib import *
import json
R, T, Rt, Rv = load_all()
di, du = degrees(Rt); RtT = Rt.T.tocsr()
users = validation_users(R.shape[0])
H = Rt[users].tocsr(); tgt = Rv[users].tocsr()
g = json.loads(sys.argv[1])
kmax = max([g["k"], *g["sharpen_ranks"]])
cache = f"Vs_val_{kmax}.npz"
if os.path.exists(cache):
    z = np.load(cache); V, sv = z["V"], z["s"]
else:
    t = time.time(); V, sv = svd_V(Rt, kmax); print(f"svd {kmax}: {time.time() - t:.1f} s", flush=True)
    np.savez(cache, V=V, s=sv)
S = l1(walk(H, Rt, RtT, di, du, g["a"], g["b"], g["c"])) + g["w"] * l1(lowpass(H, V[:, :g["k"]], di, 0.5))
print(json.dumps(dict(variant="blend only", RN=metrics(S, H, tgt))), flush=True)
if not g.get("skip_exact"):
    O = op(S, Rt, RtT, di, du, 0.5, 1.0, 0.5)
    for s in g["s_grid"]:
        print(json.dumps(dict(variant="exact P", s=s, RN=metrics(S - s * O, H, tgt))), flush=True)
print("top singular values", sv[:5].round(5).tolist(), flush=True)
for k in g["sharpen_ranks"]:
    for drop in ([False, True] if g.get("drop_stationary") else [False]):
        keep = np.arange(k)[sv[:k] < 0.999] if drop else np.arange(k)
        Ok = ((S @ V[:, keep]) * sv[keep] ** 2) @ V[:, keep].T
        for s in g["s_grid"]:
            name = f"rank-{k} P" + (f" without the {k - len(keep)} stationary directions" if drop else "")
            print(json.dumps(dict(variant=name, s=s, RN=metrics(S - s * Ok, H, tgt))), flush=True)
