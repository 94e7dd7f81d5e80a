"""Algorithms by name, and typed parsing of ``key=value`` hyper-parameters."""

from __future__ import annotations

import dataclasses
from typing import Any

from .base import Algorithm
from .ease import EASE
from .factors import ALS, BPR
from .graph_filter import GraphFilter
from .neighbours import BM25ItemKNN, ItemKNN
from .popular import MostPopular
from .spark_als import SparkALS

ALGORITHMS: dict[str, type[Algorithm]] = {
    cls.name: cls for cls in (GraphFilter, ALS, BPR, ItemKNN, BM25ItemKNN, EASE, MostPopular, SparkALS)
}
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
    fields = {f.name: f for f in dataclasses.fields(algorithm_class(name).Config)}
    items = pairs.items() if isinstance(pairs, dict) else (_split(pair) for pair in pairs)
    params = {}
    for key, value in items:
        if key not in fields:
            raise ValueError(f"{name} has no parameter {key!r}; it has: {', '.join(fields)}")
        params[key] = _convert(key, value, fields[key].type)
    return params


def create_algorithm(name: str, params: list[str] | dict[str, Any] | None = None) -> Algorithm:
    cls = algorithm_class(name)
    return cls(cls.Config(**parse_params(name, params or {})))


def _split(pair: str) -> tuple[str, str]:
    key, sep, value = pair.partition("=")
    if not sep or not key:
        raise ValueError(f"parameter {pair!r} must look like key=value")
    return key.strip(), value.strip()


def _convert(key: str, value: Any, annotation: Any) -> Any:
    if str(annotation).endswith(" | None"):  # optional: none/null/auto (or JSON null) for "choose for me"
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "auto")):
            return None
        annotation = str(annotation).removesuffix(" | None")
    kind = annotation if isinstance(annotation, type) else {"int": int, "float": float, "str": str, "bool": bool}.get(str(annotation), str)
    if not isinstance(value, str):
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, kind):
            return value
        raise ValueError(f"parameter {key!r} must be {kind.__name__}, not {value!r}")
    try:
        if kind is bool:
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return value.lower() in ("true", "1", "yes")
        return kind(value)
    except ValueError:
        raise ValueError(f"parameter {key!r} must be {kind.__name__}, not {value!r}") from None
