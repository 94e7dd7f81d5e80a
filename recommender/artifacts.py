"""Model folders: arrays (.npy) plus a JSON manifest, published atomically.

    models/<version>/manifest.json      algorithm, parameters, data, versions, checksums
    models/<version>/*.npy              vocabularies, training history, catalog, learned arrays
    models/current -> <version>         the model in production (a symbolic link)
    models/promotions.json              every promotion, newest last (for rollback)

A folder is written under a temporary name and renamed into place, so a crash never
leaves a half model. Loading uses ``np.load(allow_pickle=False)``: no code is ever
unpickled, and every file's sha256 must match the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .algorithms import algorithm_class
from .catalog import Catalog
from .errors import ArtifactError
from .files import FOLDER_MODE, undefined_as_null, write_json_atomic
from .model import Model
from .topn import TopLists
from .vocabulary import IdVocabulary
from .weights import HistoryWeighting

FORMAT = "recommender-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CURRENT = "current"
PROMOTIONS = "promotions.json"
_CORE_ARRAYS = {
    "customer_ids": lambda m: m.customers.ids,
    "item_ids": lambda m: m.items.ids,
    "history_indptr": lambda m: m.history.indptr,
    "history_indices": lambda m: m.history.indices,
    "history_data": lambda m: m.history.data,
    "item_names": lambda m: m.catalog.names,
    "item_categories": lambda m: m.catalog.categories,
    "item_prices": lambda m: m.catalog.prices,
}
_LIBRARIES = ("numpy", "scipy", "implicit", "scikit-learn", "pyarrow")


def save_model(
    model: Model, models_dir, *, info: dict | None = None, extra_files: dict[str, bytes] | None = None, version: str | None = None
) -> Path:
    """Write ``model`` to a new ``models_dir/<version>`` folder and return its path.

    ``info`` adds manifest fields (data description, training seconds, metrics);
    ``extra_files`` (name -> bytes, e.g. an evaluation report) are published with
    the model and checksummed like its arrays, but never loaded. ``version`` names the
    folder (a rewrite of an existing version); by default a new version is made up.
    """
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    info = dict(info or {})
    arrays = {name: get(model) for name, get in _CORE_ARRAYS.items()}
    if model.browsed is not None:  # only stores whose history holds views, clicks or carts
        arrays["browsed_indptr"], arrays["browsed_indices"] = model.browsed.indptr, model.browsed.indices
    if model.top_lists is not None:
        arrays["top_items"], arrays["top_scores"] = model.top_lists.items, model.top_lists.scores
        if model.top_lists.reasons is not None:
            arrays["top_reasons"] = model.top_lists.reasons
    for name, array in model.algorithm.fitted_arrays().items():
        arrays[f"algorithm.{name}"] = array
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=models_dir))
    try:
        staging.chmod(FOLDER_MODE)  # mkdtemp makes it private; a server may run as another user
        checksums = {}
        for name, array in arrays.items():
            file_name = f"{name}.npy"
            np.save(staging / file_name, np.ascontiguousarray(array), allow_pickle=False)
            checksums[file_name] = _sha256(staging / file_name)
        documents = {}
        for file_name, content in (extra_files or {}).items():
            if "/" in file_name or file_name.endswith(".npy") or file_name == MANIFEST:
                raise ValueError(f"extra file name {file_name!r} is not allowed")
            (staging / file_name).write_bytes(content)
            documents[file_name] = _sha256(staging / file_name)
        version = version or _new_version(models_dir, model.algorithm.name, info.get("data", {}).get("fingerprint", ""))
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "version": version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "algorithm": model.algorithm.name,
            "params": model.algorithm.params(),
            "fitted_settings": model.algorithm.fitted_settings(),
            "customers": len(model.customers),
            "items": len(model.items),
            "interactions": int(model.history.nnz),
            "history_weighting": model.weighting.to_dict(),
            "code_commit": code_commit(),
            "libraries": library_versions(),
            **info,
            "files": checksums,
            "documents": documents,
        }
        manifest = undefined_as_null(manifest)
        write_json_atomic(staging / MANIFEST, manifest)
        target = models_dir / version
        os.rename(staging, target)  # atomic on one filesystem: the folder appears whole
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    model.manifest = manifest
    return target


def load_model(path, *, verify: bool = True, mmap: bool = True) -> Model:
    """Load a model folder (or ``models/current``); refuses damaged or tampered folders."""
    path = Path(path)
    manifest = read_manifest(path)
    if verify:
        verify_checksums(path, manifest)
    mode = "r" if mmap else None
    arrays = {}
    for file_name in manifest["files"]:
        try:
            # np.asarray: a plain read-only view of the memory map (still shared, no copy);
            # indexing a np.memmap runs Python code, and serving indexes these per request.
            arrays[file_name[: -len(".npy")]] = np.asarray(np.load(path / file_name, mmap_mode=mode, allow_pickle=False))
        except (ValueError, OSError) as error:
            raise ArtifactError(f"{path / file_name}: not a readable numpy array ({error})") from None
    try:
        customers = IdVocabulary(arrays["customer_ids"])
        items = IdVocabulary(arrays["item_ids"])
        history = sp.csr_matrix(
            (arrays["history_data"], arrays["history_indices"], arrays["history_indptr"]), shape=(len(customers), len(items))
        )
        catalog = Catalog(arrays["item_names"], arrays["item_categories"], arrays.get("item_prices"))  # no prices in older folders
        learned = {k[len("algorithm.") :]: v for k, v in arrays.items() if k.startswith("algorithm.")}
        algorithm = algorithm_class(manifest["algorithm"]).from_arrays(manifest["params"], learned, len(items))
        top_lists = _top_lists(arrays, len(customers))
        weighting = HistoryWeighting.from_dict(manifest.get("history_weighting"))
        browsed = None
        if "browsed_indptr" in arrays:  # absent: every training cell is a purchase (and older folders)
            indices = arrays["browsed_indices"]
            browsed = sp.csr_matrix((np.ones(len(indices), dtype=np.int8), indices, arrays["browsed_indptr"]), shape=history.shape)
        return Model(algorithm, customers, items, history, catalog, manifest, top_lists, weighting, browsed)
    except (KeyError, ValueError, TypeError) as error:
        raise ArtifactError(f"{path}: model files are inconsistent ({error})") from None


def _top_lists(arrays: dict[str, np.ndarray], customers: int) -> TopLists | None:
    """The precomputed lists, if saved (folders from before reasons were stored load too)."""
    if "top_items" not in arrays:
        return None
    lists = TopLists(arrays["top_items"], arrays["top_scores"], arrays.get("top_reasons"))
    if lists.items.shape[0] != customers or lists.scores.shape != lists.items.shape:
        raise ValueError(f"top lists of shape {lists.items.shape} do not match {customers} customers")
    if lists.reasons is not None and lists.reasons.shape[:2] != lists.items.shape:
        raise ValueError(f"top reasons of shape {lists.reasons.shape} do not match the top lists {lists.items.shape}")
    return lists


def read_manifest(path) -> dict:
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"{path}: no model folder here")
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path}: {MANIFEST} is missing; this is not a model folder") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{path / MANIFEST}: not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{path / MANIFEST}: not a {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{path}: format version {manifest.get('format_version')} is not supported (expected {FORMAT_VERSION})")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(n, str) and "/" not in n and n.endswith(".npy") for n in files):
        raise ArtifactError(f"{path / MANIFEST}: the file list is malformed")
    return manifest


def verify_checksums(path: Path, manifest: dict) -> None:
    for file_name, expected in {**manifest["files"], **(manifest.get("documents") or {})}.items():
        file_path = Path(path) / file_name
        if not file_path.is_file():
            raise ArtifactError(f"{file_path}: file listed in the manifest is missing")
        if _sha256(file_path) != expected:
            raise ArtifactError(f"{file_path}: checksum mismatch; the file is damaged or was modified")


# -- the models folder -------------------------------------------------------------------
def list_models(models_dir) -> list[dict]:
    """Manifests of every complete model in ``models_dir``, oldest first."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    found = []
    for child in sorted(models_dir.iterdir()):
        if child.is_dir() and not child.is_symlink() and not child.name.startswith(".") and (child / MANIFEST).exists():
            try:
                found.append(read_manifest(child))
            except ArtifactError:
                continue
    return sorted(found, key=lambda m: (m.get("created_at", ""), m["version"]))


def current_version(models_dir) -> str | None:
    link = Path(models_dir) / CURRENT
    return os.readlink(link) if link.is_symlink() else None


def promote(models_dir, version: str) -> Path:
    """Point ``models/current`` at ``version`` (atomic symlink swap) and record it."""
    models_dir = Path(models_dir)
    version = Path(version).name  # accept a path to the folder as well as its name
    if not _is_version(models_dir, version):
        # `promote current` made current a link to itself: no model, for this server's next start.
        raise ArtifactError(f"{models_dir / version} is a link, not a model version folder: promote a version (recommender models list)")
    # Refuse to promote something that is not a whole, intact model.
    verify_checksums(models_dir / version, read_manifest(models_dir / version))
    already = current_version(models_dir) == version
    temporary = models_dir / f".{CURRENT}-{os.getpid()}-{time.monotonic_ns()}"
    os.symlink(version, temporary)
    os.replace(temporary, models_dir / CURRENT)
    if not already:  # promoting the current model again changes nothing, and rollback's target stays
        history = _promotions(models_dir)
        history.append({"version": version, "at": datetime.now(UTC).isoformat(timespec="seconds")})
        write_json_atomic(models_dir / PROMOTIONS, history)
    return models_dir / version


def _is_version(models_dir: Path, version: str) -> bool:
    """Whether ``version`` names a version folder itself (not ``current`` or another link)."""
    return version not in ("", ".", "..", CURRENT) and not (models_dir / version).is_symlink()


def rollback_target(models_dir) -> str | None:
    """The version :func:`rollback` would promote: the last one promoted before the present
    one that is still there (None when there is none)."""
    models_dir = Path(models_dir)
    current = current_version(models_dir)
    previous = [v for v in (p.get("version", "") for p in _promotions(models_dir))
                if v != current and _is_version(models_dir, v) and (models_dir / v).is_dir()]
    return previous[-1] if previous else None


def rollback(models_dir) -> Path:
    """Promote the version that was current before the present one."""
    target = rollback_target(models_dir)
    if target is None:
        raise ArtifactError(f"{models_dir}: no earlier promoted model to roll back to")
    return promote(models_dir, target)


def _promotions(models_dir: Path) -> list[dict]:
    try:
        history = json.loads((models_dir / PROMOTIONS).read_text())
        return history if isinstance(history, list) else []
    except (FileNotFoundError, json.JSONDecodeError):
        return []


# -- helpers -----------------------------------------------------------------------------
def _new_version(models_dir: Path, algorithm: str, fingerprint: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = f"{stamp}-{algorithm}-{(fingerprint or '0' * 6)[:6]}"
    version, counter = base, 1
    while (models_dir / version).exists():
        counter += 1
        version = f"{base}-{counter}"
    return version


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def code_commit() -> str:
    """The git commit of this code, or 'unknown' outside a checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"
