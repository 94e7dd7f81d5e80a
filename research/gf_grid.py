"""Stage 1: walk+lowpass (graph-filter family) grid on validation users, plus BSPM-style sharpening."""
from lib import *
import itertools, json
R, T, Rt, Rv = load_all()
di, du = degrees(Rt); RtT = Rt.T.tocsr()
users = validation_users(R.shape[0])
H = Rt[users].tocsr(); tgt = Rv[users].tocsr()
t = time.time()
if os.path.exists("V_val_1024.npy"):
    V = np.load("V_val_1024.npy")
else:
    V, s = svd_V(Rt, 1024); np.save("V_val_1024.npy", V)
print(f"svd k=1024 on val-train {time.time()-t:.1f}s", flush=True)
res = []
for k in [512, 800, 1024]:
    I = l1(lowpass(H, V[:, :k], di, 0.5))
    for a, b in itertools.product([0.5, 0.75], [0.5, 1.0]):
        Lr = walk(H, Rt, RtT, di, du, a, b, 0.0)
        for c in [0.2, 0.25, 0.3]:
            L = l1(Lr * di ** -c)
            for w in [0.25, 0.5, 1.0]:
                r, n = metrics(L + w * I, H, tgt)
                res.append(dict(k=k, a=a, b=b, c=c, w=w, R=r, N=n))
                print(json.dumps(res[-1]), flush=True)
        del Lr
    del I
res.sort(key=lambda d: -(d["R"] + d["N"]))
json.dump(res, open("gf_grid.json", "w"))
print("TOP5", *res[:5], sep="\n")
