"""Work spread over this process's threads: how many the BLAS may use, and sparse products.

The thread count is the one in force for the BLAS (``recommender --threads N``, a trial
worker's share, a server worker's one), so one setting says how many cores a job may take.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

# Below this many multiply-adds (stored entries x dense columns) a product is too short for
# threads to pay: about 30 ms of work on one core.
MIN_SPLIT_WORK = 2**25


# Threads lent to this process while it runs (a trial whose lane-mate has finished), 0: none.
_lent_threads = 0


def blas_threads() -> int:
    """The BLAS thread count in force (at least 1), after applying any threads lent meanwhile."""
    from threadpoolctl import threadpool_info

    in_force = max([pool.get("num_threads", 1) for pool in threadpool_info() if pool.get("user_api") == "blas"], default=1)
    if _lent_threads > in_force and threading.current_thread() is threading.main_thread():
        # Lent during a block that keeps LAPACK on one thread, whose end put the lane's count back.
        # (Only from the main thread: the lend's own, where no other thread is inside the BLAS.)
        _set_threads(_lent_threads)
        return _lent_threads
    return in_force


def lend_threads(threads: int) -> None:
    """Let this process use ``threads`` for the rest of its current work, in the BLAS and in
    OpenMP: the next products take them, and so does every later :func:`blas_threads` call
    (which is where sparse products count theirs). Undone by :func:`end_lending`. Call it from
    the main thread between library calls (a signal handler is), never while another thread
    is inside the BLAS."""
    global _lent_threads
    _lent_threads = max(1, int(threads))
    _set_threads(_lent_threads)


def end_lending() -> None:
    """Forget the lent threads (the enclosing thread limit then restores its own count)."""
    global _lent_threads
    _lent_threads = 0


def _set_threads(threads: int) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)  # not as a context: in force until the enclosing limit ends


def sparse_times_dense(matrix: sp.csr_matrix, dense: np.ndarray, threads: int) -> np.ndarray:
    """``matrix @ dense`` for a CSR matrix and a 2-D array, its rows split among ``threads``
    threads by stored entries. scipy's product runs on one core but releases the GIL, so
    the parts run at once: a Gowalla item-graph product (29,858 x 40,981, 810k entries,
    times 1,025 columns) took 0.63-0.71 s on two threads against 1.13-1.17 s on one. Each
    row is summed as in one product, so the result is the same to the bit."""
    if threads <= 1 or dense.ndim != 2 or matrix.nnz * dense.shape[1] < MIN_SPLIT_WORK or matrix.shape[0] < threads:
        return matrix @ dense
    matrix = sp.csr_matrix(matrix)
    dense = np.ascontiguousarray(dense)  # once here, not once per part inside scipy (an LU's factor is Fortran-ordered)
    out = np.empty((matrix.shape[0], dense.shape[1]), dtype=np.result_type(matrix.dtype, dense.dtype))
    cuts = [0, *np.searchsorted(matrix.indptr, matrix.nnz * np.arange(1, threads) / threads).tolist(), matrix.shape[0]]

    def part(k: int) -> None:
        out[cuts[k] : cuts[k + 1]] = matrix[cuts[k] : cuts[k + 1]] @ dense

    with ThreadPoolExecutor(threads, thread_name_prefix="sparse-product") as pool:
        list(pool.map(part, range(threads)))
    return out
