import tempfile, json
from pathlib import Path
from recommender.demo import generate_store, write_store
from recommender.purchases import load_purchases
from recommender.evaluation import random_split, evaluate, split_matrices
from recommender.algorithms import create_algorithm
folder = Path(tempfile.mkdtemp())
files = write_store(generate_store(seed=42), folder)
log = load_purchases(files["purchases"])
tr, te = split_matrices(*random_split(log, 0.2, seed=1))
for name, p in [("old default", dict(rank=512, history_exponent=0.75, low_rank_weight=0.25, sharpening=0.0)),
                ("new default", {}), ("new, s=0.5", dict(sharpening=0.5)), ("new, s=0", dict(sharpening=0.0))]:
    m = evaluate(create_algorithm("graph-filter", p).fit(tr), tr, te, (20,))
    print(name, round(m["recall@20"], 4), round(m["ndcg@20"], 4), flush=True)
