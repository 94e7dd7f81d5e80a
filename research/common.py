"""Shared helpers for the accuracy study of issue 4 (validation split carved from train only).

Standalone numpy/scipy research code (not used by the package); see docs/accuracy_study.md.
Run the scripts from a scratch folder: they cache V_val_1024.npy in the working directory.
"""
import os
from pathlib import Path
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")
import sys, time
import numpy as np
import scipy.sparse as sp

def top_n(S, exclude, k):
    """The k best columns per row of dense scores S, best first, and their scores; the
    nonzeros of ``exclude`` (csr, e.g. the history) are set to -inf in S first (in place)."""
    r_, c_ = sp.csr_matrix(exclude).nonzero()
    S[r_, c_] = -np.inf
    top = np.argpartition(-S, k, axis=1)[:, :k]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(S, top, 1), axis=1), 1)
    return top, np.take_along_axis(S, top, 1)


def topk_metrics(S, mask, target, k=20):
    """S dense scores, mask csr (items to exclude), target csr. Per-user recall, ndcg arrays."""
    top, _ = top_n(S.copy(), mask, k)
    hit = np.asarray(target[np.arange(S.shape[0])[:, None], top].todense()) > 0
    nt = np.diff(target.indptr)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    idcg = np.concatenate([[0], np.cumsum(disc)])
    ok = nt > 0
    return (hit.sum(1) / np.maximum(nt, 1))[ok], ((hit * disc).sum(1) / np.maximum(idcg[np.minimum(nt, k)], 1e-9))[ok]


def split_validation(R, frac=0.2, seed=0):
    """Random frac of each user's items held out (>=1 if the user has >=2)."""
    rng = np.random.default_rng(seed)
    R = sp.csr_matrix(R)
    n_u = np.diff(R.indptr)
    key = rng.random(R.nnz)
    va = np.zeros(R.nnz, bool)
    for u in range(R.shape[0]):
        s, e = R.indptr[u], R.indptr[u + 1]
        nv = int(round(frac * (e - s)))
        if e - s >= 2: nv = max(nv, 1)
        va[s + np.argsort(key[s:e])[:nv]] = True
    rows = np.repeat(np.arange(R.shape[0]), n_u)
    mk = lambda sel: sp.csr_matrix((np.ones(sel.sum(), np.float32), (rows[sel], R.indices[sel])), shape=R.shape)
    return mk(~va), mk(va)


def load_lists(path, shape):
    rows, cols = [], []
    with open(path) as f:
        for line in f:
            x = line.split()
            if len(x) > 1:
                rows += [int(x[0])] * (len(x) - 1); cols += map(int, x[1:])
    M = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)
    M.sum_duplicates(); M.data[:] = 1
    return M


SHAPE = (29858, 40981)
DATA = os.environ.get("DATA_DIR", str(Path(__file__).resolve().parents[3] / "shared/data/gowalla"))


def load_all():
    R = load_lists(f"{DATA}/train.txt", SHAPE)
    T = load_lists(f"{DATA}/test.txt", SHAPE)
    Rt, Rv = split_validation(R, 0.2, seed=0)   # validation: seeded 20% per-user hold-out of TRAIN
    return R, T, Rt, Rv


def validation_users(n_users, count=6000, seed=1):
    """The fixed sample every grid scores on (the protocol of docs/accuracy_study.md)."""
    return np.sort(np.random.default_rng(seed).choice(n_users, count, replace=False))


def degrees(Rm):
    di = np.maximum(np.asarray(Rm.sum(0)).ravel(), 1).astype(np.float32)
    du = np.maximum(np.asarray(Rm.sum(1)).ravel(), 1).astype(np.float32)
    return di, du


def svd_V(Rm, k, n_iter=3, seed=0):
    from sklearn.utils.extmath import randomized_svd
    di, du = degrees(Rm)
    Rn = (sp.diags(du ** -0.5) @ Rm @ sp.diags(di ** -0.5)).tocsr().astype(np.float32)
    _, s, vt = randomized_svd(Rn, k, n_oversamples=max(64, k // 4), n_iter=n_iter, random_state=seed)
    return np.ascontiguousarray(vt.T, dtype=np.float32), s


def l1(A):
    n = np.abs(A).sum(1, keepdims=True); n[n == 0] = 1
    return A / n


def walk(H, Rm, RmT, di, du, a, b, c):
    Y = (H.multiply(di[None, :] ** -a).tocsr() @ RmT).multiply(du[None, :] ** -b).tocsr()
    return (Y @ Rm).toarray() * di ** -c


def lowpass(H, V, di, c2):
    P = H.multiply(di[None, :] ** -0.5).tocsr() @ V
    return (P @ V.T) * di ** c2


def op(Z, Rm, RmT, di, du, a=0.5, b=1.0, c=0.5):
    """Z (n x I dense) -> Z D^-a R^T D_u^-b R D^-c  (BSPM's P~ when a=c=.5, b=1)."""
    W = (Rm @ (Z * di ** -a).T.astype(np.float32)).T * du ** -b      # n x U
    return np.ascontiguousarray((RmT @ W.T.astype(np.float32)).T) * di ** -c


def metrics(S, H, tgt):
    r, n = topk_metrics(S, H, tgt)
    return float(r.mean()), float(n.mean())


def eval_batched(score_fn, Rtrain, Rtarget, users=None, batch=2048):
    users = np.arange(Rtrain.shape[0]) if users is None else users
    rs, ns = [], []
    for s in range(0, len(users), batch):
        ub = users[s:s + batch]
        H = Rtrain[ub]
        r, n = topk_metrics(score_fn(H, ub), H, Rtarget[ub].tocsr())
        rs.append(r); ns.append(n)
    return float(np.concatenate(rs).mean()), float(np.concatenate(ns).mean())
