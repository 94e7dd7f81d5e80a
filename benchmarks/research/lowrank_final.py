"""Test figure (all 29,858 users) of the rank-k sharpening chosen on validation by lowrank_sharpen.py.
usage: lowrank_final.py '{"k": 820, "a": 0.5, "b": 0.5, "c": 0.3, "w": 0.5, "s": 0.85}'"""
from lib import *
import json
g = json.loads(sys.argv[1])
R, T, _, _ = load_all()
t = time.time()
di, du = degrees(R); RT = R.T.tocsr()
V, sv = svd_V(R, g["k"])
fit_s = time.time() - t
def score(H, ub):
    S = l1(walk(H, R, RT, di, du, g["a"], g["b"], g["c"])) + g["w"] * l1(lowpass(H, V, di, 0.5))
    return S - g["s"] * (((S @ V) * sv ** 2) @ V.T)
t = time.time(); r, n = eval_batched(score, R, T); ev_s = time.time() - t
print(json.dumps(dict(tag="TEST", cfg=g, R=round(r, 4), N=round(n, 4), svd_s=round(fit_s, 1), eval_all_users_s=round(ev_s, 1))), flush=True)
