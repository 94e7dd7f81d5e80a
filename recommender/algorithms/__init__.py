"""Every algorithm behind one interface, and a registry to create them by name."""

from .base import Algorithm, AlgorithmConfig
from .blend import Blend
from .ease import EASE
from .factors import ALS, BPR
from .graph_filter import GraphFilter
from .neighbours import BM25ItemKNN, ItemKNN
from .popular import MostPopular
from .registry import ALGORITHMS, DEFAULT_ALGORITHM, algorithm_class, create_algorithm, parse_params
from .spark_als import SparkALS

__all__ = [
    "ALGORITHMS",
    "ALS",
    "Algorithm",
    "AlgorithmConfig",
    "BM25ItemKNN",
    "Blend",
    "BPR",
    "DEFAULT_ALGORITHM",
    "EASE",
    "GraphFilter",
    "ItemKNN",
    "MostPopular",
    "SparkALS",
    "algorithm_class",
    "create_algorithm",
    "parse_params",
]
