"""The experiments a worker runs, and the models its variants are served by, side by side.

The experiments file (``EXPERIMENTS``, see :mod:`recommender.experiments.config`) is
read at start-up, where a bad file stops the server with a sentence naming the field,
and then reloaded like models: at most every ``MODEL_CHECK_SECONDS`` a request looks
at the file, and a changed file is read again. A changed file that cannot be used is
logged and reported by ``GET /v1/experiments``; the experiments read before keep
running.

Each variant's model is a published version (its own :class:`ModelHolder`, memory-mapped
like the current model, so N workers share one copy in the page cache), the current
model, or the current model's popular items (:meth:`Model.popular_baseline`). An
experiment one of whose models cannot be loaded is suspended: its customers get the
current model, outside any experiment, until the model loads.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from recommender.experiments import CURRENT, POPULAR, Experiment, ExperimentConfigError, ExperimentSet, assign, load_experiments
from recommender.experiments.figures import catalog_prices
from recommender.model import Model

from .model_holder import ModelHolder

log = logging.getLogger(__name__)


class Route(NamedTuple):
    """Who answers a request: the experiment and variant (None outside experiments) and the model."""

    experiment: str | None
    variant: str | None
    model: Model


class _Running(NamedTuple):
    """What a reload replaces, in one assignment: a request reads it once and sees one
    file's experiments with that file's models, never one file's with the other's."""

    experiments: ExperimentSet
    by_endpoint: dict[str, Experiment]
    holders: dict[str, ModelHolder]


def read_experiments(path: Path, models_dir: Path) -> ExperimentSet:
    """The experiments file at ``path``, checked, and every variant's model a version published
    in ``models_dir`` (ExperimentConfigError naming the field). The start-up check runs this
    too (serving/app.py's ``check_config``), so a worker and the launcher read a file alike."""
    experiments = load_experiments(path)
    for experiment in experiments.experiments:
        for variant in experiment.variants:
            if variant.model not in (CURRENT, POPULAR) and not (models_dir / variant.model / "manifest.json").is_file():
                raise ExperimentConfigError(
                    f"{path}: experiment {experiment.name!r}, variant {variant.name!r}: no published model "
                    f"{variant.model!r} in {models_dir} (a version folder name, 'current' or 'popular')"
                )
    return experiments


class ExperimentHolder:
    """The running experiments and their variants' models, reloaded when the file changes."""

    def __init__(self, path: str, models_dir: Path, *, check_seconds: float = 5.0):
        self.path = Path(path) if path else None
        self.models_dir = models_dir
        self.check_seconds = check_seconds
        self._running = _Running(ExperimentSet(), {}, {})
        self.error: str | None = None  # why the file on disk is not the one running
        self.suspended: dict[str, str] = {}  # experiment -> why
        self._popular: tuple[Model | None, Model | None] = (None, None)  # (current model, its popular baseline)
        self._plain = Route(None, None, None)  # the route outside experiments, for the last model seen
        self._file: tuple | None = None
        self._next_check = 0.0
        self._lock = threading.Lock()
        if self.path is not None:
            self._load(strict=True)

    # -- reading the file -----------------------------------------------------------
    def _stamp(self) -> tuple | None:
        try:
            status = os.stat(self.path)
        except OSError:
            return None
        return status.st_ino, status.st_size, status.st_mtime_ns

    def _load(self, *, strict: bool) -> None:
        stamp = self._stamp()
        try:
            experiments = read_experiments(self.path, self.models_dir)
        except ExperimentConfigError as error:
            if strict:
                raise
            self._file, self.error = stamp, str(error)
            log.error("experiments file not reloaded, the previous experiments keep running: %s", error)
            return
        previous = self._running.holders
        holders = {ref: previous.get(ref) or ModelHolder(self.models_dir / ref, check_seconds=self.check_seconds)
                   for ref in experiments.model_references() - {CURRENT, POPULAR}}
        by_endpoint = {endpoint: e for e in experiments.experiments if e.enabled for endpoint in e.endpoints}
        running = _Running(experiments, by_endpoint, holders)
        self._file, self.error, self.suspended = stamp, None, {}
        for reference, holder in holders.items():
            if holder.current() is None:  # loaded now, not by the first customer of the variant
                self._suspend(reference, running)  # before it runs: no customer is served half an experiment
        self._running = running
        log.info("running %d experiments from %s", len(experiments.experiments), self.path)

    def refresh(self) -> None:
        """Reload the file if it changed (rate-limited; cheap when it did not)."""
        now = time.monotonic()
        if self.path is None or now < self._next_check:
            return
        self._next_check = now + self.check_seconds
        if self._stamp() != self._file and self._lock.acquire(blocking=False):
            try:
                self._load(strict=False)
            finally:
                self._lock.release()

    # -- answering --------------------------------------------------------------------
    def route(self, endpoint: str, customer_id: str | None, current: Model) -> Route:
        """The experiment, variant and model for this request (the current model outside experiments)."""
        if self.path is not None:
            self.refresh()
        running = self._running
        experiment = running.by_endpoint.get(endpoint)
        if experiment is None or not customer_id or (self.suspended and not self._resumed(experiment, running)):
            plain = self._plain
            if plain.model is not current:  # one Route per model, not one per request
                plain = self._plain = Route(None, None, current)
            return plain
        variant = assign(experiment, customer_id)
        model = self._model(variant.model, current, running)
        if model is None:
            return Route(None, None, current)
        return Route(experiment.name, variant.name, model)

    def held_models(self) -> list[Model]:
        """The variants' models loaded in this worker (the served model and the popular
        baseline not included)."""
        return [holder.model for holder in self._running.holders.values() if holder.model is not None]

    @property
    def experiments(self) -> ExperimentSet:
        return self._running.experiments

    def _model(self, reference: str, current: Model, running: _Running) -> Model | None:
        if reference == CURRENT:
            return current
        if reference == POPULAR:
            source, baseline = self._popular
            if source is not current:
                baseline = current.popular_baseline()
                self._popular = (current, baseline)  # one assignment: threads see old or new pair
            return baseline
        model = running.holders[reference].current()
        if model is None:
            self._suspend(reference, running)
        return model

    def _suspend(self, reference: str, running: _Running) -> None:
        why = f"variant model {reference!r} cannot be loaded: {running.holders[reference].last_error}"
        for experiment in running.experiments.experiments:
            if any(v.model == reference for v in experiment.variants) and self.suspended.get(experiment.name) != why:
                log.error("experiment %s suspended (its customers get the current model): %s", experiment.name, why)
                self.suspended = {**self.suspended, experiment.name: why}

    def _resumed(self, experiment: Experiment, running: _Running) -> bool:
        """True unless the experiment is suspended and one of its models still cannot be loaded."""
        if experiment.name not in self.suspended:
            return True
        if any(running.holders[v.model].current() is None for v in experiment.variants if v.model in running.holders):
            return False
        self.suspended = {k: v for k, v in self.suspended.items() if k != experiment.name}
        log.info("experiment %s resumed: its models load again", experiment.name)
        return True

    def status(self, name: str) -> str:
        """``running``, ``disabled``, ``suspended: <why>`` or ``unknown``."""
        running = self._running
        experiment = running.experiments.named(name)
        if experiment is None:
            return "unknown"
        if not self._resumed(experiment, running):
            return "suspended: " + self.suspended[name]
        return "running" if experiment.enabled else "disabled"


class FiguresCache:
    """The last figures computed, reused for ``seconds`` (and while the experiments are the same)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._lock = threading.Lock()
        self._value: tuple[float, object, dict] | None = None  # (when, experiments, figures)
        self._prices: tuple[object, dict | None] = (None, None)

    def get(self, key: object, compute: Callable[[], dict]) -> dict:
        value = self._value
        if value is not None and value[1] is key and time.monotonic() - value[0] < self.seconds:
            return value[2]
        with self._lock:  # one computation at a time; the others wait and take its result
            value = self._value
            if value is not None and value[1] is key and time.monotonic() - value[0] < self.seconds:
                return value[2]
            figures = compute()
            self._value = (time.monotonic(), key, figures)
            return figures

    def prices(self, model) -> dict | None:
        """The served model's prices as a mapping (built once per model)."""
        source, prices = self._prices
        if source is not model:
            prices = None if model is None else catalog_prices(model.items.ids, getattr(model.catalog, "prices", None))
            self._prices = (model, prices)
        return prices
