"""The model a worker serves, swapped atomically when a new one is promoted.

Each worker process loads the model itself, memory-mapped, so N workers share one
copy of the arrays in the page cache. A request takes the current reference once
and uses that object to the end, so a reload never changes a model under a request:
the new model is built completely first, then one assignment replaces the reference.

Workers notice a promotion by themselves: at most every ``check_seconds`` a request
looks at where ``models/current`` points and reloads when the target changed, or when
the folder there was replaced (``recommender forget --rewrite-models`` rewrites a
version under its own name). A model that fails to load is logged and skipped; the
old one keeps serving, and it is tried again once the folder changes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from recommender.artifacts import load_model
from recommender.errors import ArtifactError
from recommender.model import Model

log = logging.getLogger(__name__)


class ModelHolder:
    """Holds the served :class:`Model` and reloads it when its path points elsewhere."""

    def __init__(
        self,
        path,
        *,
        check_seconds: float = 5.0,
        on_swap: Callable[[Model | None, Model], None] | None = None,
        on_failure: Callable[[str], None] | None = None,
    ):
        self.path = os.fspath(path)
        self.check_seconds = check_seconds
        self.on_swap = on_swap
        self.on_failure = on_failure
        self.model: Model | None = None
        self.loaded_target: str | None = None
        self.last_error: str | None = None
        self._loaded: tuple | None = None  # (folder, inode, change time) of the model loaded
        self._failed: tuple | None = None  # the same of the folder that failed to load
        self._next_check = 0.0
        self._reload_lock = threading.Lock()

    def target(self) -> str:
        """The folder the model path resolves to now (follows the models/current symlink)."""
        return os.path.realpath(self.path)

    def _identity(self, target: str) -> tuple:
        """Which folder is at ``target`` now. The inode alone is not enough: a folder deleted
        and made again often gets the freed inode back; its change time is new."""
        try:
            status = os.stat(target)
        except OSError:
            return target, None, None
        return target, status.st_ino, status.st_ctime_ns

    def current(self) -> Model | None:
        """The model to use for this request, after a cheap, rate-limited promotion check."""
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self.check_seconds
            target = self.target()
            identity = self._identity(target)
            if identity != self._loaded and identity != self._failed:
                # Only one thread loads; the others keep serving the old model meanwhile.
                if self._reload_lock.acquire(blocking=False):
                    try:
                        self._load(target)
                    finally:
                        self._reload_lock.release()
        return self.model

    def reload(self) -> Model:
        """Load whatever the path points to now and swap it in (raises ArtifactError)."""
        with self._reload_lock:
            target = self.target()
            model = self._load(target)
            if model is None:
                raise ArtifactError(self.last_error or f"{self.path}: could not be loaded")
            return model

    def _load(self, target: str) -> Model | None:
        started = time.perf_counter()
        identity = self._identity(target)  # before loading: a folder replaced meanwhile is loaded again
        try:
            model = load_model(target, mmap=True)
        except (ArtifactError, OSError) as error:
            self._failed = identity
            self.last_error = str(error)
            if self.model is None:
                log.error("no model loaded from %s: %s", self.path, error)
            else:
                log.error("keeping model %s; the new one at %s failed to load: %s", self.model.version, target, error)
            if self.on_failure is not None:
                self.on_failure(str(error))
            return None
        model.warm_up()  # lazily built state now, so the first request after a swap is not the slow one
        previous, self.model = self.model, model  # the swap: one reference assignment
        self.loaded_target, self._loaded, self._failed, self.last_error = target, identity, None, None
        log.info("serving model %s from %s (loaded in %.2fs)", model.version, target, time.perf_counter() - started)
        if self.on_swap is not None:
            self.on_swap(previous, model)
        return model

