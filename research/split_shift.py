"""Diagnostic: is the validation hold-out distributed like the test set? Compares, per split, the
item popularity (train degree) of held-out items, and per-user hold-out shares. No model involved.

    python -m research.split_shift
"""

import numpy as np

from research.common import load_all, parser, run_log


def main() -> None:
    parser(__doc__).parse_args()
    log = run_log(__file__)
    R, T, Rt, Rv = load_all()
    d_full = np.asarray(R.sum(0)).ravel()
    d_vt = np.asarray(Rt.sum(0)).ravel()

    def describe(name, M, d):
        dd = d[M.indices]
        log(
            f"{name:28s} n={M.nnz:8d} mean deg {dd.mean():8.1f} median {np.median(dd):6.0f} "
            f"share deg<=5 {np.mean(dd <= 5):.3f} share deg>=100 {np.mean(dd >= 100):.3f} cold {np.mean(dd == 0):.4f}"
        )

    describe("train items (full train deg)", R, d_full)
    describe("test items (full train deg)", T, d_full)
    describe("val-train items (vt deg)", Rt, d_vt)
    describe("val items (val-train deg)", Rv, d_vt)
    nu = np.diff(R.indptr)
    nt = np.diff(T.indptr)
    nv = np.diff(Rv.indptr)
    nvt = np.diff(Rt.indptr)
    log(
        "test/train per-user ratio: mean",
        (nt / np.maximum(nu, 1)).mean().round(3),
        " val/val-train:",
        (nv / np.maximum(nvt, 1)).mean().round(3),
    )
    # correlation of hold-out share with history length
    for name, a, b in [("test", nt, nu), ("val", nv, nvt)]:
        q = np.quantile(b, [0.25, 0.5, 0.75])
        shares = [round(float((a / np.maximum(b + a, 1))[(b >= lo) & (b < hi)].mean()), 3) for lo, hi in zip([0, *q], [*q, 1e9])]
        log(name, "hold-out share by history quartile:", shares)


if __name__ == "__main__":
    main()
