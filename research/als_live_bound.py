"""Can a live ALS answer skip most of the product with every item's factors? (issue 20)

    python -m research.als_live_bound MODEL_FOLDER [--draws 200]

MODEL_FOLDER: an ALS model with top lists (``make bench-serve`` trains one under
out/bench-serving/models). For random training customers with one new purchase, u' is the
fold-in of the new history and u the training vector whose top-K list (scores s_1..s_K) is
cached. An item outside that list scored at most s_K for u, so for u' at most
s_K + |u' - u| |y_i|; and any item at most |u'| |y_i|. Scoring exactly only the cached list
and the M items of largest norm, the answer is certified when its 10th best score reaches
the smaller bound for the items left out (norm at most that of the (M+1)-th item). It
prints the certified share per M (M = 0: the cached list alone).
"""

import argparse

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recommender.artifacts import load_model

HEADS = (0, 500, 2000, 5000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--draws", type=int, default=200)
    args = parser.parse_args()
    threadpool_limits(1)
    model = load_model(args.model)
    algorithm, lists = model.algorithm, model.top_lists
    factors = algorithm.item_factors_.astype(np.float32)
    norms = np.linalg.norm(factors, axis=1)
    by_norm = np.argsort(-norms)
    rng = np.random.default_rng(0)
    certified = dict.fromkeys(HEADS, 0)
    for _ in range(args.draws):
        customer = int(rng.integers(len(model.customers)))
        row = model.history[customer]
        new = int(rng.integers(factors.shape[0]))
        while new in row.indices:
            new = int(rng.integers(factors.shape[0]))
        bought = np.r_[row.indices, new]
        added = sp.csr_matrix((np.r_[row.data, 1.0].astype(np.float32), (np.zeros(len(bought), int), bought)), shape=row.shape)
        after = algorithm.customer_vectors(added, np.array([-1]))[0]
        moved = float(np.linalg.norm(after - algorithm.customer_factors_[customer]))
        last_cached = float(lists.scores[customer, -1])
        for head in HEADS:
            exact = np.union1d(lists.items[customer], by_norm[:head])
            scores = factors[exact] @ after
            scores[np.isin(exact, bought)] = -np.inf
            rest = norms[by_norm[head]] if head < len(by_norm) else 0.0
            bound = last_cached + moved * (rest if head else norms.max())
            if head:
                bound = min(bound, float(np.linalg.norm(after)) * rest)
            if np.sort(scores)[-10] >= bound:
                certified[head] += 1
    print({head: count / args.draws for head, count in certified.items()})


if __name__ == "__main__":
    main()
