"""Implicit ALS trained by Apache Spark MLlib, served by the same factor-model code.

Spark's implicit ALS (``pyspark.ml.recommendation.ALS(implicitPrefs=True)``) minimises,
for ratings ``r`` (here ``r = log2(1 + weight)``, the taming our ``als`` uses):

    Σ_{u,i} c_ui (p_ui - x_uᵀ y_i)²  +  λ (Σ_u n_u |x_u|² + Σ_i n_i |y_i|²)

with confidence ``c = 1 + alpha·r``, preference ``p = 1`` where ``r > 0``, and the
regularisation of each vector scaled by its number of ratings (ALS-WR). A customer
is therefore folded in by solving

    (YᵀY + Σ_j (c_j - 1) y_j y_jᵀ + λ n_u I) x_u = Σ_j c_j y_j

which is exactly Spark's own last half-step (it updates customers after items), so the
fold-in of a training customer reproduces the vector Spark learned. ``_fit`` runs
Spark in local mode on this machine; ``training.spark_jobs`` trains the same model
on a cluster from files, and both export through ``recommender.artifacts``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from .base import AlgorithmConfig
from .factors import ALS


@dataclasses.dataclass
class SparkALSConfig(AlgorithmConfig):
    """Spark MLlib implicit ALS; ``regularization`` is Spark's ``regParam`` (scaled by counts)."""

    factors: int = 64
    regularization: float = 0.01
    alpha: float = 10.0
    iterations: int = 15


class SparkALS(ALS):
    """Implicit-feedback ALS-WR trained by Spark MLlib (Hu et al. 2008; Zhou et al. 2008)."""

    name = "spark-als"
    Config = SparkALSConfig

    @staticmethod
    def rating(weights: np.ndarray) -> np.ndarray:
        """The rating handed to Spark for an interaction weight (one purchase rates 1)."""
        return np.log2(1.0 + weights)

    def confidence(self, weights: np.ndarray) -> np.ndarray:
        return 1.0 + self.config.alpha * self.rating(weights)

    def _shared_fold_in_matrix(self) -> None:
        return None  # the ridge grows with the history's length: no A0 shared by all customers

    def _fold_in_systems(self, vectors: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        # ALS-WR: λ grows with the number of rated items, as in Spark's normal equations.
        ridge = self.config.regularization * vectors.shape[1]
        weighted = vectors * (confidence - 1.0)[..., None]
        return self._item_gram() + ridge * np.eye(vectors.shape[-1]) + weighted.transpose(0, 2, 1) @ vectors

    def _fit(self, customer_items: sp.csr_matrix, *, show_progress: bool) -> None:
        import pyarrow as pa

        from ..spark_support import spark_session

        spark = spark_session()
        coo = customer_items.tocoo()
        ratings = spark.createDataFrame(
            pa.table(
                {
                    "customer": coo.row.astype(np.int32),
                    "item": coo.col.astype(np.int32),
                    "rating": self.rating(coo.data.astype(np.float64)).astype(np.float32),
                }
            )
        )
        self._set_factors(*fit_spark_als(ratings, self.config, customer_items.shape[0], customer_items.shape[1]))


def spark_ratings(cells):
    """A DataFrame of (customer, item, weight) cells as Spark's ratings: (customer, item,
    rating float), the rating :meth:`SparkALS.rating` gives, log2(1 + weight)."""
    from pyspark.sql import functions as F

    return cells.select("customer", "item", F.log2(F.col("weight") + 1.0).cast("float").alias("rating"))


def fit_spark_als(ratings, config: SparkALSConfig, n_customers: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Train Spark implicit ALS on a DataFrame of (customer int, item int, rating float).

    Returns dense float32 customer and item factor matrices, row = index.
    """
    from pyspark.ml.recommendation import ALS as SparkMLlibALS

    from ..spark_support import factor_matrix

    estimator = SparkMLlibALS(
        rank=config.factors,
        maxIter=config.iterations,
        regParam=config.regularization,
        alpha=config.alpha,
        implicitPrefs=True,
        nonnegative=False,
        seed=config.random_state,
        userCol="customer",
        itemCol="item",
        ratingCol="rating",
    )
    fitted = estimator.fit(ratings)
    return (
        factor_matrix(fitted.userFactors, n_customers, config.factors),
        factor_matrix(fitted.itemFactors, n_items, config.factors),
    )
