"""Fit a validation-selected config on full train, time the fit, evaluate on test (all 29,858 users).
Also reports the same config on the full validation split (all users) when --val is given.
usage: final_eval.py '<config json>' [--val]
config: k,a,b,c,c2,w  [s: sharpening strength with BSPM's P~ op]  [ials:{...}, beta]"""
from lib import *
from ials import fit_ials
import json
g = json.loads(sys.argv[1]); do_val = "--val" in sys.argv
R, T, Rt, Rv = load_all()
def z(A):
    return (A - A.mean(1, keepdims=True)) / A.std(1, keepdims=True)
def run(Rtrain, Rtarget, tag):
    t = time.time()
    di, du = degrees(Rtrain); RT = Rtrain.T.tocsr()
    V, _ = svd_V(Rtrain, g["k"]) if g.get("w", 0) > 0 else (None, None)
    fit_s = time.time() - t
    if g.get("ials"):
        t2 = time.time(); W, Hf = fit_ials(Rtrain, **g["ials"]); ials_s = time.time() - t2; fit_s += ials_s
    def score(H, ub):
        S = l1(walk(H, Rtrain, RT, di, du, g["a"], g["b"], g["c"]))
        if V is not None:
            S = S + g["w"] * l1(lowpass(H, V, di, g.get("c2", 0.5)))
        if g.get("s"):
            S = l1(S) - g["s"] * l1(op(S, Rtrain, RT, di, du, 0.5, 1.0, 0.5))
        if g.get("ials"):
            S = z(S) + g["beta"] * z(W[ub] @ Hf.T)
        return S
    t = time.time(); r, n = eval_batched(score, Rtrain, Rtarget); ev_s = time.time() - t
    print(json.dumps(dict(tag=tag, cfg=g, R=round(r, 4), N=round(n, 4), fit_s=round(fit_s, 1), eval_all_users_s=round(ev_s, 1))), flush=True)
if do_val:
    run(Rt, Rv, "VAL(all users)")
run(R, T, "TEST")
