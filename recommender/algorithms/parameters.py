"""Typed parsing of ``key=value`` hyper-parameters against an algorithm's config.

Apart from the registry so that a blend can parse its parts' parameters without importing
the registry, which lists the blend itself.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any


def parse_config_params(name: str, config: type, pairs: list[str] | dict[str, Any]) -> dict[str, Any]:
    """Turn ``["factors=64", "alpha=2"]`` into typed values for the dataclass ``config`` of
    the algorithm ``name`` (named in the errors)."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    items = pairs.items() if isinstance(pairs, dict) else (_split(pair) for pair in pairs)
    params = {}
    for key, value in items:
        if key not in fields:
            raise ValueError(f"{name} has no parameter {key!r}; it has: {', '.join(fields)}")
        params[key] = _convert(key, value, fields[key].type)
    return params


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
    if str(annotation) == "dict":  # another algorithm's parameters (a blend's parts): a JSON object
        try:
            parsed = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise ValueError(f"parameter {key!r} must be a JSON object, not {value!r}")
        return parsed
    kind = annotation if isinstance(annotation, type) else {"int": int, "float": float, "str": str, "bool": bool}.get(str(annotation), str)
    converted = _typed(key, value, kind)
    # NaN passes every range check (each comparison is false) and an infinity most: either
    # reached the fit and failed there with the library's traceback ("NaN encountered in factors").
    if kind is float and not math.isfinite(converted):
        raise ValueError(f"parameter {key!r} must be a finite number, not {value!r}")
    return converted


def _typed(key: str, value: Any, kind: type) -> Any:
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
