"""Stage 3: joint grid on validation users: GF config x sharpening s x iALS blend beta."""
from lib import *
from ials import fit_ials
import json
R, T, Rt, Rv = load_all()
di, du = degrees(Rt); RtT = Rt.T.tocsr()
users = validation_users(R.shape[0])
H = Rt[users].tocsr(); tgt = Rv[users].tocsr()
cfgs = json.loads(sys.argv[1]); ic = json.loads(sys.argv[2])
def z(A):
    return (A - A.mean(1, keepdims=True)) / A.std(1, keepdims=True)
t = time.time(); W, Hf = fit_ials(Rt, **ic); print("ials fit", round(time.time() - t, 1), flush=True)
ZA = z(W[users] @ Hf.T)
Vall = np.load("V_val_1024.npy")
for g in cfgs:
    S = l1(walk(H, Rt, RtT, di, du, g["a"], g["b"], g["c"])) + g["w"] * l1(lowpass(H, Vall[:, :g["k"]], di, 0.5))
    S = l1(S); O = l1(op(S, Rt, RtT, di, du, 0.5, 1.0, 0.5))
    for s in [0.0, 0.7, 0.85, 1.0]:
        Ss = z(S - s * O)
        for beta in [0.0, 0.75, 1.0, 1.5]:
            print(json.dumps(dict(g, s=s, beta=beta, RN=metrics(Ss + beta * ZA, H, tgt))), flush=True)
