"""Work spread over threads: the BLAS thread count in force, and split sparse products."""

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recommender.parallel import MIN_SPLIT_WORK, blas_threads, sparse_times_dense


def test_a_split_sparse_product_is_the_product_to_the_bit():
    matrix = sp.random(3000, 2000, density=0.02, format="csr", random_state=1, dtype=np.float32)
    matrix = sp.vstack([sp.csr_matrix((500, 2000), dtype=np.float32), matrix[500:]]).tocsr()  # empty rows first: a part may be empty
    dense = np.asfortranarray(np.random.default_rng(0).standard_normal((2000, 1000)).astype(np.float32))  # as an LU gives it
    assert matrix.nnz * dense.shape[1] >= MIN_SPLIT_WORK  # large enough to be split
    expected = matrix @ dense
    for threads in (1, 2, 3, 7):
        got = sparse_times_dense(matrix, dense, threads)
        assert got.dtype == np.float32 and np.array_equal(got, expected)
    small = sp.random(10, 8, density=0.5, format="csr", random_state=2)
    assert np.array_equal(sparse_times_dense(small, np.ones((8, 3)), 4), small @ np.ones((8, 3)))


def test_the_thread_count_is_the_blas_one_in_force():
    with threadpool_limits(1, "blas"):
        assert blas_threads() == 1


def test_threads_lent_hold_until_lending_ends_even_past_a_one_thread_block():
    from threadpoolctl import threadpool_info

    from recommender import parallel

    def blas_in_force():
        return max(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")

    with threadpool_limits(1):
        try:
            with threadpool_limits(1, "blas"):  # as around an LU: its end puts back what was in force at its start
                parallel.lend_threads(2)  # the lend arrives inside it
                assert blas_in_force() == 2
            assert blas_in_force() == 1
            assert parallel.blas_threads() == 2 and blas_in_force() == 2  # asked again: the lend applied again
        finally:
            parallel.end_lending()
        assert parallel.blas_threads() == 2  # no longer lent: what is in force (the lend's, until the limit ends)
    with threadpool_limits(1):
        assert parallel.blas_threads() == 1
