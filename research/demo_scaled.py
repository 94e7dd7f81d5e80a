"""Demo-store check (as demo_check.py) of the package's graph-filter with the rank scaled to the
catalogue: rank = round(frac * n_items), for the Gowalla-selected walk/sharpening settings.
usage (repo root, PYTHONPATH=.): demo_scaled.py '<json list of param dicts; "rank_frac" replaces rank>'"""
import sys, json, tempfile
from pathlib import Path
from recommender.demo import generate_store, write_store
from recommender.purchases import load_purchases
from recommender.evaluation import random_split, evaluate, split_matrices
from recommender.algorithms import create_algorithm
folder = Path(tempfile.mkdtemp())
files = write_store(generate_store(seed=42), folder)
log = load_purchases(files["purchases"])
tr, te = split_matrices(*random_split(log, 0.2, seed=1))
print("demo", tr.shape, "default", {k: round(v, 4) for k, v in evaluate(create_algorithm("graph-filter", {}).fit(tr), tr, te, (20,)).items() if k in ("recall@20", "ndcg@20")}, flush=True)
for p in json.loads(sys.argv[1]):
    q = dict(p)
    if "rank_frac" in q:
        q["rank"] = max(1, int(round(q.pop("rank_frac") * tr.shape[1])))
    m = evaluate(create_algorithm("graph-filter", q).fit(tr), tr, te, (20,))
    print(json.dumps(dict(params=p, rank=q.get("rank"), R=round(m["recall@20"], 4), N=round(m["ndcg@20"], 4))), flush=True)
