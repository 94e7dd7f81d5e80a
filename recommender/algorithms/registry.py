"""Algorithms by name, and typed parsing of ``key=value`` hyper-parameters."""

from __future__ import annotations

from typing import Any

from .base import Algorithm
from .blend import Blend
from .parameters import parse_config_params
from .standalone import STANDALONE

ALGORITHMS: dict[str, type[Algorithm]] = {**STANDALONE, Blend.name: Blend}
# The algorithm of the tools that need one named (`tune`, `train_from_log`) when none is;
# `recommender train` and `evaluate` default to the automatic choice (recommender.selection).
DEFAULT_ALGORITHM = "graph-filter"


def algorithm_class(name: str) -> type[Algorithm]:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r}; choose one of: {', '.join(sorted(ALGORITHMS))}") from None


def parse_params(name: str, pairs: list[str] | dict[str, Any]) -> dict[str, Any]:
    """Turn ``["factors=64", "alpha=2"]`` into typed values for ``name``'s config."""
    return parse_config_params(name, algorithm_class(name).Config, pairs)


def create_algorithm(name: str, params: list[str] | dict[str, Any] | None = None) -> Algorithm:
    cls = algorithm_class(name)
    return cls(cls.Config(**parse_params(name, params or {})))
