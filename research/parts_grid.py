"""Generic validation grid over blends of named, row-L1-normalised linear parts plus sharpening
(protocol of gf_grid.py).  Parts:
    {"type": "walk", "a", "b", "c"}                 L = (r D^-a) R^T D_u^-b R D^-c
    {"type": "low", "k", "c2", "gamma"}             I = (r D^-1/2 V_k) diag((sigma/sigma_1)^gamma) V_k^T D^c2
Config: {"parts": {name: weight}, "s1": step}:  score = B - s1 B P,  B = sum weight * part/|part|_1
  optional per-customer scalars (n_u = history length, m = median n_u of the evaluated users):
  "dexp": {name: delta}  part weight times (n_u/m)^delta;   "sexp": delta  step s1 times (n_u/m)^delta
usage: parts_grid.py '<json dict of parts>' '<json list of configs>'
"""
import sys, json
sys.path.insert(0, __import__("os").path.dirname(__file__))
from lib import *

parts_spec = json.loads(sys.argv[1]); cfgs = json.loads(sys.argv[2])
chunk = 1000
R, T, Rt, Rv = load_all()
di, du = degrees(Rt); RtT = Rt.T.tocsr()
users = validation_users(R.shape[0])
V = np.load("V_val_1024.npy")
Rn = (sp.diags(du ** -0.5) @ Rt @ sp.diags(di ** -0.5)).tocsr().astype(np.float32)
sig = np.linalg.norm(Rn @ V, axis=0); sig = sig / sig.max()
print("sigma (rel) at 1,128,256,512,800,1024:", sig[[0, 127, 255, 511, 799, 1023]].round(3), flush=True)
used = {n for c in cfgs for n in c["parts"]}
P = lambda Z: op(Z, Rt, RtT, di, du, 0.5, 1.0, 0.5)
acc = [[[], []] for _ in cfgs]
t0 = time.time()
for s0 in range(0, len(users), chunk):
    ub = users[s0:s0 + chunk]
    H = Rt[ub].tocsr(); tgt = Rv[ub].tocsr()
    X, X1 = {}, {}
    for name, p in parts_spec.items():
        if name not in used: continue
        if p["type"] == "walk":
            X[name] = l1(walk(H, Rt, RtT, di, du, p["a"], p["b"], p["c"]))
        else:
            k = p["k"]; wts = sig[:k] ** p.get("gamma", 0.0)
            Pj = H.multiply(di[None, :] ** -0.5).tocsr() @ V[:, :k]
            X[name] = l1(((Pj * wts) @ V[:, :k].T) * di ** p.get("c2", 0.5))
        X1[name] = P(X[name])
    tb = time.time() - t0
    nu = np.diff(H.indptr).astype(np.float32)[:, None]; rel = nu / np.median(np.diff(Rt[users].indptr))
    for i, c in enumerate(cfgs):
        S = np.zeros_like(next(iter(X.values())))
        st = c.get("s1", 0) * rel ** c.get("sexp", 0.0)
        for n, wt in c["parts"].items():
            wt = wt * rel ** c.get("dexp", {}).get(n, 0.0)
            S += wt * X[n]
            if c.get("s1"): S -= (wt * st) * X1[n]
        r, n_ = topk_metrics(S, H, tgt)
        acc[i][0].append(r); acc[i][1].append(n_)
    print(f"chunk {s0}: parts {tb:.0f}s, total {time.time()-t0:.0f}s", flush=True)
    del X, X1
res = []
for c, (r, n) in zip(cfgs, acc):
    d = dict(**c, R=round(float(np.concatenate(r).mean()), 4), N=round(float(np.concatenate(n).mean()), 4))
    d["RN"] = round(d["R"] + d["N"], 4)
    res.append(d); print(json.dumps(d), flush=True)
res.sort(key=lambda d: -d["RN"])
print("PARTS", json.dumps(parts_spec))
print("TOP5", *res[:5], sep="\n")
