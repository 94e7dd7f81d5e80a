"""Demo-store check (as demo_check.py: 5,000 x 2,000 demo store seed 42, random 20% split seed 1)
of parts_grid.py configs, research implementation, low-pass rank = round(rank_frac * n_items).
usage (repo root, PYTHONPATH=.): demo_parts.py '<parts json>' '<json list of configs>' [rank_frac ...]"""
import sys, os, json, tempfile
from pathlib import Path
sys.path.insert(0, os.path.dirname(__file__))
import numpy as np, scipy.sparse as sp
from lib import degrees, walk, l1, op, svd_V, top_n
from recommender.demo import generate_store, write_store
from recommender.purchases import load_purchases
from recommender.evaluation import random_split, evaluate, split_matrices


class Parts:
    def __init__(self, spec, cfg, rank_frac):
        self.spec, self.c, self.frac = spec, cfg, rank_frac

    def fit(self, R):
        R = sp.csr_matrix(R, dtype=np.float32, copy=True); R.data[:] = 1
        self.R, self.RT = R, R.T.tocsr()
        self.di, self.du = degrees(R)
        self.k = max(1, int(round(self.frac * R.shape[1])))
        self.V = svd_V(R, self.k)[0]
        self.med = float(np.median(np.diff(R.indptr)))
        return self

    def scores(self, H):
        H = sp.csr_matrix(H, dtype=np.float32, copy=True); H.data[:] = 1
        c = self.c
        rel = np.maximum(np.diff(H.indptr), 1).astype(np.float32)[:, None] / self.med
        S = 0
        for n, wt in c["parts"].items():
            p = self.spec[n]
            if p["type"] == "walk":
                X = l1(walk(H, self.R, self.RT, self.di, self.du, p["a"], p["b"], p["c"]))
            else:
                X = l1(((H.multiply(self.di[None, :] ** -0.5).tocsr() @ self.V) @ self.V.T) * self.di ** p.get("c2", 0.5))
            S = S + X * (wt * rel ** c.get("dexp", {}).get(n, 0.0))
        if c.get("s1"):
            S = S - (c["s1"] * rel ** c.get("sexp", 0.0)) * op(S, self.R, self.RT, self.di, self.du, 0.5, 1.0, 0.5)
        return S

    def recommend(self, history, n, users=None):
        return top_n(self.scores(history), history, n)


spec = json.loads(sys.argv[1]); cfgs = json.loads(sys.argv[2])
fracs = [float(x) for x in sys.argv[3:]] or [800 / 40981]
folder = Path(tempfile.mkdtemp())
files = write_store(generate_store(seed=42), folder)
log = load_purchases(files["purchases"])
tr, te = split_matrices(*random_split(log, 0.2, seed=1))
for f in fracs:
    for c in cfgs:
        m = evaluate(Parts(spec, c, f).fit(tr), tr, te, (20,))
        print(json.dumps(dict(rank_frac=round(f, 4), rank=max(1, int(round(f * tr.shape[1]))), cfg=c,
                              R=round(m["recall@20"], 4), N=round(m["ndcg@20"], 4))), flush=True)
