"""Test evaluation (all 29,858 users, fit on full train, fit timed) of a blend_grid.py config.
usage: final_blend.py '<base json as blend_grid.py>' '<cfg json: w,wc,s1,s2,gamma>' [--val]
--val: also the same config on the validation split, all users (fit on val-train); --val-only: only that.
Fit = item/customer degrees + one randomized SVD of D_u^-1/2 R D_i^-1/2 at rank max(k, eta)
(the low-pass part and the ChebyCF ideal part share it: both use its top singular vectors)."""
import sys, os, json, time
sys.path.insert(0, os.path.dirname(__file__))
from lib import *
from cheby_grid import cheby_coeffs, cheb_bases

g = json.loads(sys.argv[1]); c = json.loads(sys.argv[2])
R, T, Rt, Rv = load_all()
ch = g.get("cheb")


def run(Rtrain, Rtarget, tag):
    t = time.perf_counter()
    di, du = degrees(Rtrain); RT = Rtrain.T.tocsr()
    kmax = max(g["k"], ch["eta"] if ch and c.get("wc") else 0)
    V, _ = svd_V(Rtrain, kmax)
    fit_s = time.perf_counter() - t
    Vk = np.ascontiguousarray(V[:, :g["k"]])
    co = cheby_coeffs(ch["K"], ch["phi"], ch.get("s", 0.0)) if ch else None

    def score(H, ub):
        B = l1(walk(H, Rtrain, RT, di, du, g["a"], g["b"], g["c"])) + c.get("w", 0.5) * l1(lowpass(H, Vk, di, 0.5))
        if c.get("wc"):
            Xs = H.multiply(di[None, :] ** -ch["bp"]).tocsr()
            Cb = cheb_bases(Xs.toarray(), ch["K"], Rtrain, RT, di, du)
            C = sum(a_ * b_ for a_, b_ in zip(co, Cb)); del Cb
            if ch.get("alpha", 0) > 0:
                Vc = V[:, :ch["eta"]]
                C += ch["alpha"] * ((Xs @ Vc) @ Vc.T)
            B += c["wc"] * l1(C * di ** ch["bq"])
        S = B
        if c.get("s1") or c.get("s2"):
            P1 = op(B, Rtrain, RT, di, du, 0.5, 1.0, 0.5)
            S = B - c.get("s1", 0) * P1
            if c.get("s2"):
                S += c["s2"] * op(P1, Rtrain, RT, di, du, 0.5, 1.0, 0.5)
        if c.get("gamma"):
            S *= di ** -c["gamma"]
        return S

    t = time.time(); r, n = eval_batched(score, Rtrain, Rtarget, batch=1000); ev = time.time() - t
    print(json.dumps(dict(tag=tag, base=g, cfg=c, R=round(r, 4), N=round(n, 4), fit_s=round(fit_s, 1),
                          svd_rank=kmax, eval_s=round(ev, 1), load=os.getloadavg())), flush=True)


if "--val" in sys.argv or "--val-only" in sys.argv:
    run(Rt, Rv, "VAL(all users)")
if "--val-only" not in sys.argv:
    run(R, T, "TEST")
