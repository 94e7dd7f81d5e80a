"""Sharpening without its own per-user L1 norm: score = S - s' * S P~ (S = L/|L| + w I/|I| as served)."""
from lib import *
import json
R, T, Rt, Rv = load_all()
di, du = degrees(Rt); RtT = Rt.T.tocsr()
users = validation_users(R.shape[0])
H = Rt[users].tocsr(); tgt = Rv[users].tocsr()
g = json.loads(sys.argv[1])
V = np.load("V_val_1024.npy")[:, :g["k"]]
S = l1(walk(H, Rt, RtT, di, du, g["a"], g["b"], g["c"])) + g["w"] * l1(lowpass(H, V, di, 0.5))
O = op(S, Rt, RtT, di, du, 0.5, 1.0, 0.5)
ratio = np.abs(O).sum(1) / np.abs(S).sum(1)
print("ratio |SP|/|S| quantiles", np.quantile(ratio, [0.05, 0.25, 0.5, 0.75, 0.95]).round(3), flush=True)
for s in g["s_grid"]:
    print(json.dumps(dict(variant="raw", s=s, RN=metrics(S - s * O, H, tgt))), flush=True)
