"""Published models rewritten without erased customers (``recommender forget --rewrite-models``).

A model folder holds each training customer's id, their training history, their
precomputed top list with its reasons, and the algorithm's per-customer state (factor
vectors, the graph filter's walk rows). Rewriting a folder drops all of those for
every customer on the erasure list, keeps the version name (experiments and the
promotion history still refer to it) and replaces the folder whole: the new folder
is written beside it, then two renames swap them, then the old one is deleted.
Serving notices the replaced folder and loads it within ``MODEL_CHECK_SECONDS``.

What a rewrite cannot remove: what the erased customers taught the item side (item
factors, similarities, popularity counts, the evaluation report's aggregate
figures). That goes with the next training, which leaves them out entirely.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .artifacts import list_models, load_model, save_model
from .events.training_data import erased_in
from .model import Model
from .topn import TopLists
from .vocabulary import IdVocabulary

# Manifest fields save_model writes itself from the model.
_WRITTEN_BY_SAVE = {"format", "format_version", "version", "algorithm", "params", "fitted_settings", "customers", "items", "interactions", "files", "documents"}


@dataclass(frozen=True)
class Rewritten:
    version: str
    customers_removed: int


def holding_erased(models_dir, keys: set[str]) -> list[str]:
    """Versions in ``models_dir`` whose vocabulary still names a customer on the erasure list."""
    found = []
    for manifest in list_models(models_dir):
        ids = np.load(Path(models_dir) / manifest["version"] / "customer_ids.npy", mmap_mode="r", allow_pickle=False)
        if erased_in(IdVocabulary(ids), keys).any():
            found.append(manifest["version"])
    return found


def rewrite_without(models_dir, keys: set[str], erasures_through: int) -> list[Rewritten]:
    """Rewrite every published model that holds a customer on the erasure list (``keys``)."""
    models_dir = Path(models_dir)
    return [_rewrite(models_dir, version, keys, erasures_through) for version in holding_erased(models_dir, keys)]


def _rewrite(models_dir: Path, version: str, keys: set[str], erasures_through: int) -> Rewritten:
    folder = models_dir / version
    model = load_model(folder, mmap=False)
    keep = ~erased_in(model.customers, keys)
    forgotten = without_customers(model, keep)
    manifest = model.manifest
    info = {k: v for k, v in manifest.items() if k not in _WRITTEN_BY_SAVE}
    data = dict(manifest.get("data") or {})
    data.update(customers=int(keep.sum()), erasures_through=max(erasures_through, int(data.get("erasures_through") or 0)))
    info["data"] = data
    info["rewritten"] = [*manifest.get("rewritten", []), {
        "at": datetime.now(UTC).isoformat(timespec="seconds"), "customers_removed": int((~keep).sum()), "why": "erasure",
    }]
    documents = {name: (folder / name).read_bytes() for name in manifest.get("documents", {})}
    staging = Path(tempfile.mkdtemp(prefix=".rewrite-", dir=models_dir))
    retired = models_dir / f".erased-{version}-{os.getpid()}"
    try:
        written = save_model(forgotten, staging, info=info, extra_files=documents, version=version)
        os.rename(folder, retired)
        try:
            os.rename(written, folder)
        except BaseException:
            os.rename(retired, folder)  # put the old one back rather than leave no folder
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)
    return Rewritten(version, int((~keep).sum()))


def without_customers(model: Model, keep: np.ndarray) -> Model:
    """The model with only the training customers where ``keep`` is true (renumbered in order)."""
    rows = np.flatnonzero(keep)
    history = model.history[rows]
    lists = model.top_lists
    if lists is not None:
        lists = TopLists(lists.items[rows], lists.scores[rows], None if lists.reasons is None else lists.reasons[rows])
    model.algorithm.forget_customers(keep)
    browsed = None if model.browsed is None else model.browsed[rows]
    return Model(model.algorithm, IdVocabulary(model.customers.ids[rows]), model.items, history, model.catalog, dict(model.manifest), lists,
                 model.weighting, browsed)

