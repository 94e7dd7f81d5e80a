"""Stage 2: on the validation-selected graph-filter config: BSPM-style sharpening, and blends with iALS.
usage: stage2.py '<gf config json>' '<ials config json or null>'"""
from lib import *
from ials import fit_ials
import json
R, T, Rt, Rv = load_all()
di, du = degrees(Rt); RtT = Rt.T.tocsr()
users = validation_users(R.shape[0])
H = Rt[users].tocsr(); tgt = Rv[users].tocsr()
g = json.loads(sys.argv[1]); ic = json.loads(sys.argv[2]) if len(sys.argv) > 2 else None
V = np.load("V_val_1024.npy")[:, :g["k"]]
S = l1(walk(H, Rt, RtT, di, du, g["a"], g["b"], g["c"])) + g["w"] * l1(lowpass(H, V, di, g.get("c2", 0.5)))
print("gf", g, metrics(S, H, tgt), flush=True)
def z(A):
    return (A - A.mean(1, keepdims=True)) / A.std(1, keepdims=True)
if g.get("sharpen", True):
    ops = {"bspm P~": (0.5, 1.0, 0.5), "same-walk": (g["a"], g["b"], g["c"])}
    for name, (a2, b2, c2) in [(n_, ops[n_]) for n_ in g.get("ops", list(ops))]:
        t = time.time(); O = l1(op(S, Rt, RtT, di, du, a2, b2, c2)); dt = time.time() - t
        Sn = l1(S)
        for s in g.get("s_grid", [0.1, 0.2, 0.3, 0.5, 0.7]):
            print(json.dumps(dict(sharpen=name, s=s, op_s=round(dt, 1), RN=metrics(Sn - s * O, H, tgt))), flush=True)
        del O
if ic:
    t = time.time(); W, Hf = fit_ials(Rt, **ic); print("ials fit", round(time.time() - t, 1), flush=True)
    A = W[users] @ Hf.T
    print("ials alone", metrics(A.copy(), H, tgt), flush=True)
    Zs, Za = z(S), z(A); del A
    for beta in [0.1, 0.2, 0.3, 0.5, 0.75, 1.0]:
        print(json.dumps(dict(blend="z(gf)+beta*z(ials)", beta=beta, RN=metrics(Zs + beta * Za, H, tgt))), flush=True)
