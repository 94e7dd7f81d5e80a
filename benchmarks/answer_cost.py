"""In-process A/B of one cached recommendation answer: CPU microseconds per request, two checkouts.

    python benchmarks/answer_cost.py OLD_CHECKOUT NEW_CHECKOUT [--model out/bench-serving/models/current] [--runs 4]

The wrk A/B (benchmarks/serving_ab.py) measures the whole server, whose throughput on a
shared 2-core machine moves by tens of percent with other people's jobs. This measures
only the app: each run is a fresh process of one checkout (PYTHONPATH=checkout) that
builds the Flask app on the benchmark's model and an empty event store (then ``gc.freeze()``, as
gunicorn's worker start does), and calls its
WSGI entry point directly for ``--requests`` GETs of random known customers' ``n=10``
recommendations (the cached path: no events, top lists precomputed), after a warm-up.
It reports the process CPU time per request (``time.process_time``: steadier than wall
time under load), the median of ``--rounds`` rounds; runs alternate old, new, old, new.
The answer log's background thread, where the new checkout has one, runs in the same
process, so its cost is counted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import io, json, random, sys, tempfile, time
import numpy as np
from serving import create_app
model, requests, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
app = create_app({"MODEL_PATH": model, "EVENTS_DB": tempfile.mkdtemp() + "/events.sqlite3"})
import gc
gc.freeze()  # as serving/gunicorn.conf.py's post_worker_init does
customers = [str(c) for c in np.load(model + "/customer_ids.npy", mmap_mode="r")[:20000]]
random.seed(42)
paths = [f"/v1/customers/{random.choice(customers)}/recommendations" for _ in range(requests)]
def call(path):
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "n=10", "SERVER_NAME": "bench", "SERVER_PORT": "80",
               "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http", "SERVER_PROTOCOL": "HTTP/1.1"}
    body = b"".join(app.wsgi_app(environ, lambda status, headers: None))
    return body
for path in paths[:2000]:
    call(path)
results = []
for _ in range(rounds):
    started = time.process_time()
    for path in paths:
        call(path)
    time.sleep(0.5)  # the answer log's thread writes the round's answers; its CPU is counted below
    results.append((time.process_time() - started) / requests * 1e6)
print(json.dumps(results))
"""


def one_run(checkout: Path, model: Path, requests: int, rounds: int) -> list[float]:
    environment = {"PYTHONPATH": str(checkout), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", CHILD, str(model), str(requests), str(rounds)], cwd=tempfile.gettempdir(),
                          env=environment, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--model", type=Path, default=ROOT / "out" / "bench-serving" / "models" / "current")
    parser.add_argument("--runs", type=int, default=4, help="processes per checkout, alternating")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    if not (args.model / "manifest.json").is_file():
        raise SystemExit(f"{args.model}: no model; run benchmarks/serving_ab.py or make bench-serve once to build it")
    found: dict[Path, list[float]] = {args.old: [], args.new: []}
    for _ in range(args.runs):
        for checkout in (args.old, args.new):
            rounds = one_run(checkout.resolve(), args.model.resolve(), args.requests, args.rounds)
            found[checkout] += rounds
            print(f"{checkout}: {', '.join(f'{r:.1f}' for r in rounds)} µs CPU per answer", flush=True)
    old, new = statistics.median(found[args.old]), statistics.median(found[args.new])
    print(f"median CPU per cached answer: old {old:.1f} µs, new {new:.1f} µs ({new - old:+.1f} µs, {new / old - 1:+.1%})")


if __name__ == "__main__":
    main()
