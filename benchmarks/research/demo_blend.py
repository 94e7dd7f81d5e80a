"""Demo-store check (as demo_check.py: 5,000 x 2,000 demo store seed 42, random 20% split seed 1)
of blend_grid.py configs (walk + low-pass + ChebyCF part, sharpened), research implementation.
Ranks scale with the catalogue: low-pass rank k = round(k_frac * n_items), ChebyCF ideal rank
eta = round(eta_frac * n_items) (Gowalla: 800 and 512 of 40,981 items).
usage (repo root, PYTHONPATH=.): demo_blend.py '<base json>' '<json list of cfgs>' [k_frac eta_frac]"""
import sys, os, json, tempfile
from pathlib import Path
sys.path.insert(0, os.path.dirname(__file__))
import numpy as np, scipy.sparse as sp
from lib import degrees, walk, lowpass, l1, op, svd_V, top_n
from cheby_grid import cheby_coeffs, cheb_bases
from recommender.demo import generate_store, write_store
from recommender.purchases import load_purchases
from recommender.evaluation import random_split, evaluate, split_matrices


class Blend:
    def __init__(self, g, c, k_frac, eta_frac):
        self.g, self.c, self.kf, self.ef = g, c, k_frac, eta_frac

    def fit(self, R):
        R = sp.csr_matrix(R, dtype=np.float32, copy=True); R.data[:] = 1
        self.R, self.RT = R, R.T.tocsr()
        self.di, self.du = degrees(R)
        n = R.shape[1]
        self.k = max(1, int(round(self.kf * n))); self.eta = max(1, int(round(self.ef * n)))
        self.V = svd_V(R, max(self.k, self.eta))[0]
        ch = self.g["cheb"]
        self.co = cheby_coeffs(ch["K"], ch["phi"], ch.get("s", 0.0))
        return self

    def scores(self, H):
        H = sp.csr_matrix(H, dtype=np.float32, copy=True); H.data[:] = 1
        g, c, ch, di, du, R, RT = self.g, self.c, self.g["cheb"], self.di, self.du, self.R, self.RT
        B = l1(walk(H, R, RT, di, du, g["a"], g["b"], g["c"])) + c.get("w", 0.5) * l1(lowpass(H, self.V[:, :self.k], di, 0.5))
        if c.get("wc"):
            Xs = H.multiply(di[None, :] ** -ch["bp"]).tocsr()
            C = sum(a_ * b_ for a_, b_ in zip(self.co, cheb_bases(Xs.toarray(), ch["K"], R, RT, di, du)))
            if ch.get("alpha", 0) > 0:
                Vc = self.V[:, :self.eta]
                C += ch["alpha"] * ((Xs @ Vc) @ Vc.T)
            B += c["wc"] * l1(C * di ** ch["bq"])
        if c.get("s1"):
            B = B - c["s1"] * op(B, R, RT, di, du, 0.5, 1.0, 0.5)
        return B

    def recommend(self, history, n, users=None):
        return top_n(self.scores(history), history, n)


g = json.loads(sys.argv[1]); cfgs = json.loads(sys.argv[2])
kf, ef = (float(sys.argv[3]), float(sys.argv[4])) if len(sys.argv) > 4 else (800 / 40981, 512 / 40981)
folder = Path(tempfile.mkdtemp())
files = write_store(generate_store(seed=42), folder)
log = load_purchases(files["purchases"])
tr, te = split_matrices(*random_split(log, 0.2, seed=1))
for c in cfgs:
    m = Blend(g, c, kf, ef).fit(tr)
    r = evaluate(m, tr, te, (20,))
    print(json.dumps(dict(k=m.k, eta=m.eta, base=g, cfg=c, R=round(r["recall@20"], 4), N=round(r["ndcg@20"], 4))), flush=True)
