"""The package's graph-filter on the demo store (5,000 customers x 2,000 items, seed 42; a random
20% of each customer's purchases held out, seed 1), with any settings; "rank_frac" sets the rank
to round(rank_frac * n_items), to try a Gowalla-chosen rank scaled to the catalogue.

    python -m research.demo_scaled '<json list of param dicts; "rank_frac" replaces rank>'
    python -m research.demo_scaled '[{"rank": 512}]'                     # the default, then the old rank
    python -m research.demo_scaled '[{"rank": 512, "history_exponent": 0.75, "low_rank_weight": 0.25, "sharpening": 0}]'

Prints the current default first. Accuracy comes from the package's own ``evaluate``.
"""

import json

from recommender.algorithms import create_algorithm
from recommender.evaluation import evaluate
from research.common import demo_split, parser, run_log


def main() -> None:
    cli = parser(__doc__)
    cli.add_argument("params", type=json.loads, help="JSON list of graph-filter parameter dicts")
    args = cli.parse_args()
    log = run_log(__file__)
    tr, te = demo_split()
    default = evaluate(create_algorithm("graph-filter", {}).fit(tr), tr, te, (20,))
    log("demo", tr.shape, "default", {k: round(v, 4) for k, v in default.items() if k in ("recall@20", "ndcg@20")})
    for p in args.params:
        q = dict(p)
        if "rank_frac" in q:
            q["rank"] = max(1, int(round(q.pop("rank_frac") * tr.shape[1])))
        m = evaluate(create_algorithm("graph-filter", q).fit(tr), tr, te, (20,))
        log(json.dumps(dict(params=p, rank=q.get("rank"), R=round(m["recall@20"], 4), N=round(m["ndcg@20"], 4))))


if __name__ == "__main__":
    main()
