"""The algorithms that stand alone: every one but the blend, whose parts they can be."""

from __future__ import annotations

from .base import Algorithm
from .ease import EASE
from .factors import ALS, BPR
from .graph_filter import GraphFilter
from .neighbours import BM25ItemKNN, ItemKNN
from .popular import MostPopular
from .spark_als import SparkALS

STANDALONE: dict[str, type[Algorithm]] = {
    cls.name: cls for cls in (GraphFilter, ALS, BPR, ItemKNN, BM25ItemKNN, EASE, MostPopular, SparkALS)
}
