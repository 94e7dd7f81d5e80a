"""Experiments as configuration: a JSON file of named experiments, each splitting customers
between variants that are served by different models.

    {"experiments": [{"name": "homepage",
                      "variants": [{"name": "control", "model": "popular", "share": 0.5},
                                   {"name": "default", "model": "current", "share": 0.5}]}]}

A variant's ``model`` is a published version's folder name, ``current`` (whatever
models/current points to) or ``popular`` (the current model's popular items). Optional
fields of an experiment: ``control`` (the variant the others are compared with;
default ``control`` when a variant has that name, else the first), ``endpoints`` (the
answers it covers: ``recommendations`` by default, ``similar``, ``rank``; one
experiment per endpoint), ``salt`` (the hash salt of its assignment; default its name),
``enabled`` (default true; a disabled experiment assigns nobody but is still
reported), ``metric`` (``ctr`` or ``conversion``, the one its verdict is about; default
``ctr``), ``minimum_detectable_effect`` (the smallest relative change worth finding,
default 0.1 = 10%, for the power estimate) and ``description``.

Names are limited to letters, digits, ``_.-`` (64 at most), and a file to
:data:`MAX_EXPERIMENTS` experiments of :data:`MAX_VARIANTS` variants: they become metric
labels, whose sets must stay small.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENDPOINTS = ("recommendations", "similar", "rank")
CURRENT, POPULAR = "current", "popular"
METRICS = ("ctr", "conversion")
MAX_EXPERIMENTS, MAX_VARIANTS = 20, 10
SHARE_TOLERANCE = 1e-6
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_EXPERIMENT_FIELDS = {"name", "variants", "control", "endpoints", "salt", "enabled", "metric", "minimum_detectable_effect", "description"}
_VARIANT_FIELDS = {"name", "model", "share", "description"}


class ExperimentConfigError(ValueError):
    """The experiments file cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Variant:
    name: str
    model: str  # a version folder name, CURRENT or POPULAR
    share: float


@dataclass(frozen=True)
class Experiment:
    name: str
    variants: tuple[Variant, ...]
    control: str
    salt: str
    endpoints: tuple[str, ...] = ("recommendations",)
    enabled: bool = True
    metric: str = "ctr"
    minimum_detectable_effect: float = 0.1
    description: str = ""

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)

    @property
    def treatments(self) -> tuple[Variant, ...]:
        """Every variant but the control."""
        return tuple(v for v in self.variants if v.name != self.control)


@dataclass(frozen=True)
class ExperimentSet:
    """The experiments of one file, in file order."""

    experiments: tuple[Experiment, ...] = ()
    source: str = ""

    def named(self, name: str) -> Experiment | None:
        return next((e for e in self.experiments if e.name == name), None)

    def for_endpoint(self, endpoint: str) -> Experiment | None:
        """The enabled experiment covering ``endpoint``, if any (at most one does)."""
        return next((e for e in self.experiments if e.enabled and endpoint in e.endpoints), None)

    def model_references(self) -> set[str]:
        return {v.model for e in self.experiments for v in e.variants}


def load_experiments(path) -> ExperimentSet:
    """Read and check the experiments file at ``path`` (ExperimentConfigError naming what is wrong)."""
    path = Path(path)
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExperimentConfigError(f"{path}: no such experiments file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ExperimentConfigError(f"{path}: not a readable JSON file ({error})") from None
    return parse_experiments(content, str(path))


def parse_experiments(content: Any, source: str = "experiments") -> ExperimentSet:
    """Check a parsed experiments document and return it as an :class:`ExperimentSet`."""
    if not isinstance(content, dict) or not isinstance(content.get("experiments"), list):
        raise ExperimentConfigError(f'{source}: must be a JSON object {{"experiments": [...]}}')
    unknown = set(content) - {"experiments"}
    if unknown:
        raise ExperimentConfigError(f"{source}: unknown field {sorted(unknown)[0]!r}; the file holds only \"experiments\"")
    raw = content["experiments"]
    if len(raw) > MAX_EXPERIMENTS:
        raise ExperimentConfigError(f"{source}: {len(raw)} experiments; at most {MAX_EXPERIMENTS} (they are metric labels)")
    experiments = tuple(_experiment(entry, f"{source}: experiments[{k}]") for k, entry in enumerate(raw))
    names = [e.name for e in experiments]
    for name in names:
        if names.count(name) > 1:
            raise ExperimentConfigError(f"{source}: two experiments are named {name!r}")
    for endpoint in ENDPOINTS:
        covering = [e.name for e in experiments if e.enabled and endpoint in e.endpoints]
        if len(covering) > 1:
            raise ExperimentConfigError(
                f"{source}: experiments {covering[0]!r} and {covering[1]!r} both cover {endpoint}; one enabled experiment per endpoint"
            )
    return ExperimentSet(experiments, source)


def _experiment(entry: Any, where: str) -> Experiment:
    if not isinstance(entry, dict):
        raise ExperimentConfigError(f"{where}: must be a JSON object")
    _no_unknown_fields(entry, _EXPERIMENT_FIELDS, where)
    name = _name(entry.get("name"), f"{where}.name")
    where = f"{where} ({name})"
    raw_variants = entry.get("variants")
    if not isinstance(raw_variants, list) or not 2 <= len(raw_variants) <= MAX_VARIANTS:
        raise ExperimentConfigError(f"{where}.variants: must list 2 to {MAX_VARIANTS} variants")
    variants = tuple(_variant(v, f"{where}.variants[{k}]") for k, v in enumerate(raw_variants))
    variant_names = [v.name for v in variants]
    if len(set(variant_names)) != len(variant_names):
        raise ExperimentConfigError(f"{where}.variants: two variants share a name")
    total = math.fsum(v.share for v in variants)
    if abs(total - 1.0) > SHARE_TOLERANCE:
        raise ExperimentConfigError(f"{where}.variants: the shares add up to {total:g}, not 1")
    control = entry.get("control", "control" if "control" in variant_names else variant_names[0])
    if control not in variant_names:
        raise ExperimentConfigError(f"{where}.control: {control!r} is not one of its variants ({', '.join(variant_names)})")
    endpoints = entry.get("endpoints", ["recommendations"])
    if not isinstance(endpoints, list) or not endpoints or any(e not in ENDPOINTS for e in endpoints):
        raise ExperimentConfigError(f"{where}.endpoints: must be a non-empty list of {', '.join(ENDPOINTS)}")
    salt = entry.get("salt", name)
    enabled = entry.get("enabled", True)
    metric = entry.get("metric", "ctr")
    effect = entry.get("minimum_detectable_effect", 0.1)
    description = entry.get("description", "")
    if not isinstance(salt, str) or not salt:
        raise ExperimentConfigError(f"{where}.salt: must be a non-empty string")
    if not isinstance(enabled, bool):
        raise ExperimentConfigError(f"{where}.enabled: must be true or false")
    if metric not in METRICS:
        raise ExperimentConfigError(f"{where}.metric: must be one of {', '.join(METRICS)}")
    if isinstance(effect, bool) or not isinstance(effect, (int, float)) or not 0 < effect <= 10:
        raise ExperimentConfigError(f"{where}.minimum_detectable_effect: must be a relative change above 0 and up to 10 (0.1 = 10%)")
    if not isinstance(description, str):
        raise ExperimentConfigError(f"{where}.description: must be a string")
    return Experiment(name, variants, control, salt, tuple(dict.fromkeys(endpoints)), enabled, metric, float(effect), description)


def _variant(entry: Any, where: str) -> Variant:
    if not isinstance(entry, dict):
        raise ExperimentConfigError(f"{where}: must be a JSON object")
    _no_unknown_fields(entry, _VARIANT_FIELDS, where)
    name = _name(entry.get("name"), f"{where}.name")
    model = entry.get("model")
    if not isinstance(model, str) or not (model in (CURRENT, POPULAR) or _NAME.fullmatch(model)):
        raise ExperimentConfigError(f"{where} ({name}).model: must be a published version's folder name, {CURRENT!r} or {POPULAR!r}")
    share = entry.get("share")
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        raise ExperimentConfigError(f"{where} ({name}).share: must be a number above 0 and up to 1, not {share!r}")
    return Variant(name, model, float(share))


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ExperimentConfigError(f"{where}: must be 1 to 64 letters, digits, '_', '.' or '-' (starting with a letter or digit), not {value!r}")
    return value


def _no_unknown_fields(entry: dict, known: set[str], where: str) -> None:
    unknown = set(entry) - known
    if unknown:
        raise ExperimentConfigError(f"{where}: unknown field {sorted(unknown)[0]!r}; known: {', '.join(sorted(known))}")
