"""Shared helpers of the accuracy study (docs/accuracy_study.md): the Gowalla data and the
validation protocol, the linear parts of the graph filter in plain numpy/scipy, and
Recall@20 / NDCG@20 through the package's own top-k and metrics.

Protocol: validation is a seeded 20% per-user hold-out of ``train.txt`` (``split_validation``,
seed 0); grids score a fixed sample of 6,000 users (``validation_users``, seed 1); every item
is ranked except the user's (validation-)train items.

Metrics: ``recommender.ranking.top_k`` picks the 20 best items per row after the history is
set to -inf, ``recommender.evaluation.metrics.hit_matrix`` marks the hits and
``accuracy_at_k`` averages recall = hits / #target items and NDCG (binary gains, ideal DCG
over min(#target, 20)) over the rows with at least one target item: the definitions of
recommender/evaluation/metrics.py, the ones ``recommender evaluate`` reports.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommender.evaluation.metrics import accuracy_at_k, hit_matrix
from recommender.ranking import top_k

HERE = Path(__file__).resolve().parent
LOGS = HERE / "logs"  # run logs and results (git-ignored)
CACHE = HERE / "cache"  # SVDs shared between runs (git-ignored)
CONFIGS = HERE / "configs"  # the grid inputs quoted in README.md
DATA = Path(os.environ.get("DATA_DIR", HERE.parents[1] / "shared" / "data" / "gowalla"))
SHAPE = (29858, 40981)  # Gowalla: users x items
GOWALLA_ITEMS = SHAPE[1]
K = 20


# -- running ----------------------------------------------------------------------------


def parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser whose --help prints the script's docstring."""
    return argparse.ArgumentParser(
        prog=f"python -m research.{Path(sys.argv[0]).stem}", description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def run_log(script: str) -> Callable[..., None]:
    """A ``print`` that also appends to research/logs/<script>-<start time>.log (git-ignored).

    The log starts with the command that produced it."""
    LOGS.mkdir(exist_ok=True)
    name = Path(script).stem
    path = LOGS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    with path.open("a") as file:
        file.write(f"# python -m research.{name} {shlex.join(sys.argv[1:])}\n")
    print(f"(log: {path})", file=sys.stderr, flush=True)

    def log(*values: object, sep: str = " ") -> None:
        text = sep.join(map(str, values))
        print(text, flush=True)
        with path.open("a") as file:
            file.write(text + "\n")

    return log


# -- data ---------------------------------------------------------------------------------


def load_lists(path: Path | str, shape: tuple[int, int]) -> sp.csr_matrix:
    """A LightGCN list file (``user item item ...`` per line) as a binary csr matrix."""
    rows: list[int] = []
    cols: list[int] = []
    with open(path) as file:
        for line in file:
            fields = line.split()
            if len(fields) > 1:
                rows += [int(fields[0])] * (len(fields) - 1)
                cols += map(int, fields[1:])
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)
    matrix.sum_duplicates()
    matrix.data[:] = 1
    return matrix


def split_validation(R: sp.spmatrix, frac: float = 0.2, seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """A random ``frac`` of each user's items held out (at least one if the user has two or more)."""
    rng = np.random.default_rng(seed)
    R = sp.csr_matrix(R)
    n_u = np.diff(R.indptr)
    key = rng.random(R.nnz)
    held = np.zeros(R.nnz, bool)
    for u in range(R.shape[0]):
        s, e = R.indptr[u], R.indptr[u + 1]
        n_held = int(round(frac * (e - s)))
        if e - s >= 2:
            n_held = max(n_held, 1)
        held[s + np.argsort(key[s:e])[:n_held]] = True
    rows = np.repeat(np.arange(R.shape[0]), n_u)

    def matrix(selected: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((np.ones(selected.sum(), np.float32), (rows[selected], R.indices[selected])), shape=R.shape)

    return matrix(~held), matrix(held)


def load_all() -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """Gowalla's train R and test T, and the validation split of R: val-train Rt, validation Rv."""
    R = load_lists(DATA / "train.txt", SHAPE)
    T = load_lists(DATA / "test.txt", SHAPE)
    Rt, Rv = split_validation(R, 0.2, seed=0)  # validation: seeded 20% per-user hold-out of TRAIN
    return R, T, Rt, Rv


def validation_users(n_users: int, count: int = 6000, seed: int = 1) -> np.ndarray:
    """The fixed sample every grid scores on (the protocol of docs/accuracy_study.md)."""
    return np.sort(np.random.default_rng(seed).choice(n_users, count, replace=False))


def demo_split() -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The project's demo store (5,000 customers x 2,000 items, seed 42), a random 20% of each
    customer's purchases held out (seed 1): train and test matrices, as in the study."""
    from recommender.demo import generate_store, write_store
    from recommender.evaluation import random_split, split_matrices
    from recommender.purchases import load_purchases

    with tempfile.TemporaryDirectory() as folder:
        files = write_store(generate_store(seed=42), Path(folder))
        log = load_purchases(files["purchases"])
    return split_matrices(*random_split(log, 0.2, seed=1))


# -- the graph filter's linear parts ------------------------------------------------------


def degrees(Rm: sp.spmatrix) -> tuple[np.ndarray, np.ndarray]:
    """Item and user degrees (at least 1), float32."""
    di = np.maximum(np.asarray(Rm.sum(0)).ravel(), 1).astype(np.float32)
    du = np.maximum(np.asarray(Rm.sum(1)).ravel(), 1).astype(np.float32)
    return di, du


def svd_V(Rm: sp.spmatrix, k: int, n_iter: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Top-k right singular vectors (items x k) and singular values of D_u^-1/2 R D_i^-1/2 (randomised)."""
    from sklearn.utils.extmath import randomized_svd

    di, du = degrees(Rm)
    Rn = (sp.diags(du**-0.5) @ Rm @ sp.diags(di**-0.5)).tocsr().astype(np.float32)
    _, s, vt = randomized_svd(Rn, k, n_oversamples=max(64, k // 4), n_iter=n_iter, random_state=seed)
    return np.ascontiguousarray(vt.T, dtype=np.float32), s


def cached_svd(Rm: sp.spmatrix, k: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``svd_V(Rm, k)``, kept in research/cache/svd_<name>_<k>.npz and reused while the matrix
    has the same shape and number of entries (the grids share the validation-train basis)."""
    path = CACHE / f"svd_{name}_{k}.npz"
    stamp = np.array([*Rm.shape, Rm.nnz])
    if path.exists():
        cached = np.load(path)
        if np.array_equal(cached["stamp"], stamp):
            return cached["V"], cached["s"]
    V, s = svd_V(Rm, k)
    CACHE.mkdir(exist_ok=True)
    np.savez(path, V=V, s=s, stamp=stamp)
    return V, s


def l1(A: np.ndarray) -> np.ndarray:
    """Rows divided by their L1 norms (zero rows left alone)."""
    norms = np.abs(A).sum(1, keepdims=True)
    norms[norms == 0] = 1
    return A / norms


def walk(H, Rm, RmT, di, du, a, b, c) -> np.ndarray:
    """L(H) = (H D_i^-a) R^T D_u^-b R D_i^-c, dense rows: the normalised two-hop walk."""
    Y = (H.multiply(di[None, :] ** -a).tocsr() @ RmT).multiply(du[None, :] ** -b).tocsr()
    return (Y @ Rm).toarray() * di**-c


def lowpass(H, V, di, c2) -> np.ndarray:
    """I(H) = (H D_i^-1/2 V) V^T D_i^c2: GF-CF's ideal low-pass filter."""
    P = H.multiply(di[None, :] ** -0.5).tocsr() @ V
    return (P @ V.T) * di**c2


def op(Z, Rm, RmT, di, du, a=0.5, b=1.0, c=0.5) -> np.ndarray:
    """Z (n x I dense) -> Z D^-a R^T D_u^-b R D^-c  (BSPM's P~ when a=c=.5, b=1)."""
    W = (Rm @ (Z * di**-a).T.astype(np.float32)).T * du**-b  # n x U
    return np.ascontiguousarray((RmT @ W.T.astype(np.float32)).T) * di**-c


# -- metrics, through the package ---------------------------------------------------------


def recommended(
    scores: np.ndarray, history: sp.spmatrix, rows: np.ndarray | None = None, k: int = K, batch: int = 1000
) -> np.ndarray:
    """The k best items of ``scores[rows]``, best first, each row's ``history`` items excluded
    (``recommender.ranking.top_k``; -1 pads a row with fewer than k items above -inf).
    ``scores`` is left unchanged; at most ``batch`` rows are copied at a time."""
    history = sp.csr_matrix(history)
    rows = np.arange(scores.shape[0]) if rows is None else np.asarray(rows)
    lists = []
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        block = scores[chunk]  # indexing with an array copies, so masking the history leaves scores alone
        seen = history[chunk]
        block[np.repeat(np.arange(len(chunk)), np.diff(seen.indptr)), seen.indices] = -np.inf
        lists.append(top_k(block, k)[0])
    return np.concatenate(lists) if lists else np.empty((0, k), np.int64)


def hits(scores: np.ndarray, history: sp.spmatrix, target: sp.spmatrix, k: int = K) -> tuple[np.ndarray, np.ndarray]:
    """``hit_matrix`` of the top-k lists and the number of target items, for the rows with at
    least one target item (the rows the metrics average over)."""
    target = sp.csr_matrix(target)
    n_relevant = np.diff(target.indptr)
    rows = np.flatnonzero(n_relevant > 0)
    return hit_matrix(recommended(scores, history, rows, k), target[rows]), n_relevant[rows]


def recall_ndcg(parts: Iterable[tuple[np.ndarray, np.ndarray]], k: int = K) -> tuple[float, float]:
    """Recall@k and NDCG@k (``accuracy_at_k``) over the rows of one or more ``hits`` results."""
    parts = list(parts)
    measured = accuracy_at_k(np.concatenate([h for h, _ in parts]), np.concatenate([n for _, n in parts]), k)
    return measured["recall"], measured["ndcg"]


def metrics(scores: np.ndarray, history: sp.spmatrix, target: sp.spmatrix, k: int = K) -> tuple[float, float]:
    """Recall@k and NDCG@k of dense ``scores`` (rows: users) against ``target``, ``history`` excluded."""
    return recall_ndcg([hits(scores, history, target, k)], k)


def eval_batched(
    score_fn: Callable[[sp.csr_matrix, np.ndarray], np.ndarray],
    Rtrain: sp.csr_matrix,
    Rtarget: sp.csr_matrix,
    users: np.ndarray | None = None,
    batch: int = 2048,
) -> tuple[float, float]:
    """Recall@20 and NDCG@20 of ``score_fn(history rows, user ids)`` over ``users`` (default all)
    with at least one target item, scored ``batch`` users at a time, train items excluded."""
    Rtarget = sp.csr_matrix(Rtarget)
    users = np.arange(Rtrain.shape[0]) if users is None else np.asarray(users)
    users = users[np.diff(Rtarget.indptr)[users] > 0]  # the others count in no metric
    parts = []
    for start in range(0, len(users), batch):
        chunk = users[start : start + batch]
        history = Rtrain[chunk]
        parts.append(hits(score_fn(history, chunk), history, Rtarget[chunk]))
    return recall_ndcg(parts)
