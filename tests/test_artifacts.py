"""Model folders: round trip, refusal of damaged folders, promotion and rollback."""

import json
import os

import numpy as np
import pytest

from recommender.algorithms import create_algorithm
from recommender.artifacts import (
    current_version,
    list_models,
    load_model,
    promote,
    read_manifest,
    rollback,
    save_model,
)
from recommender.catalog import Catalog
from recommender.errors import ArtifactError
from recommender.files import write_json_atomic
from recommender.model import Model
from recommender.vocabulary import IdVocabulary
from tests.conftest import two_group_matrix


def build_model(algorithm="item-knn", params=None) -> Model:
    matrix = two_group_matrix()
    customers = IdVocabulary([f"c{i:02d}" for i in range(20)])
    items = IdVocabulary([f"i{i}" for i in range(10)])
    catalog = Catalog(np.array([f"Item {i}" for i in range(10)]), np.array(["A"] * 5 + ["B"] * 5))
    fitted = create_algorithm(algorithm, params or {}).fit(matrix)
    return Model(fitted, customers, items, matrix, catalog)


def test_round_trip_gives_identical_answers(tmp_path):
    model = build_model("als", {"factors": 2, "alpha": 1.0, "regularization": 0.1})
    path = save_model(model, tmp_path, info={"training_seconds": 1.5})
    loaded = load_model(path)
    assert loaded.version == path.name
    assert loaded.recommend("c03", 3).items == model.recommend("c03", 3).items
    manifest = read_manifest(path)
    assert manifest["algorithm"] == "als" and manifest["params"]["factors"] == 2
    assert manifest["customers"] == 20 and manifest["items"] == 10 and manifest["training_seconds"] == 1.5
    assert set(manifest["files"]) == {p.name for p in path.iterdir() if p.suffix == ".npy"}
    assert set(manifest["libraries"]) >= {"numpy", "implicit", "python"}
    assert manifest["fitted_settings"] == {}  # ALS chooses nothing itself


def test_settings_chosen_at_fit_are_in_the_manifest_and_survive_loading(tmp_path):
    model = build_model("graph-filter", {"rank": 6})
    path = save_model(model, tmp_path)
    chosen = read_manifest(path)["fitted_settings"]
    assert set(chosen) == {"rank", "sharpening"} and chosen == model.algorithm.fitted_settings()
    assert read_manifest(path)["params"]["sharpening"] is None  # asked for: choose it
    loaded = load_model(path)
    assert loaded.algorithm.fitted_settings() == chosen
    assert loaded.recommend("c03", 3).items == model.recommend("c03", 3).items


def test_no_temporary_folders_are_left_behind(tmp_path):
    save_model(build_model(), tmp_path)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_nan_is_never_written_into_a_manifest(tmp_path):
    # Python's json writes NaN, which is no JSON: other readers of manifest.json refuse the file.
    # An undefined figure (the standard error of one validation customer's difference) is null;
    # refusing it would leave the model unpublished after all the fitting, or unrewritable by forget.
    path = save_model(build_model(), tmp_path, info={"choice": {"blend": {"standard_error": float("nan")}, "ratio": [float("inf")]}})
    manifest = json.loads((path / "manifest.json").read_text())  # strict JSON: json.loads would accept NaN, so check the text too
    assert manifest["choice"] == {"blend": {"standard_error": None}, "ratio": [None]}
    assert "NaN" not in (path / "manifest.json").read_text() and "Infinity" not in (path / "manifest.json").read_text()
    with pytest.raises(ValueError, match="report.json not written"):  # elsewhere a NaN is still refused, not written
        write_json_atomic(tmp_path / "report.json", {"x": float("nan")})


def test_tampered_truncated_or_missing_files_are_refused(tmp_path):
    path = save_model(build_model(), tmp_path)
    data = path / "history_data.npy"
    original = data.read_bytes()
    data.write_bytes(original[:-4] + b"\x00\x00\x00\x40")  # last weight 1.0 -> 2.0
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_model(path)
    data.write_bytes(original[: len(original) // 2])
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_model(path)
    data.unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_model(path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_model(path)


def test_loading_never_unpickles(tmp_path):
    path = save_model(build_model(), tmp_path)
    # Replace an array with a pickled object array and fix up its checksum: still refused.
    np.save(path / "item_names.npy", np.array([object()] * 10, dtype=object), allow_pickle=True)
    import hashlib

    manifest = read_manifest(path)
    manifest["files"]["item_names.npy"] = hashlib.sha256((path / "item_names.npy").read_bytes()).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="not a readable numpy array"):
        load_model(path)


def test_promote_and_rollback(tmp_path):
    first = save_model(build_model(), tmp_path)
    second = save_model(build_model("popular"), tmp_path)
    assert first.name != second.name
    promote(tmp_path, first.name)
    promote(tmp_path, second.name)
    assert current_version(tmp_path) == second.name
    assert load_model(tmp_path / "current").algorithm.name == "popular"
    rollback(tmp_path)
    assert current_version(tmp_path) == first.name
    assert [m["version"] for m in list_models(tmp_path)] == [first.name, second.name]
    with pytest.raises(ArtifactError):
        promote(tmp_path, "no-such-version")
    assert os.readlink(tmp_path / "current") == first.name  # a failed promotion changes nothing


def test_current_cannot_be_promoted_to_point_at_itself(tmp_path):
    """`recommender models promote current` made current a link to itself (exit 0): the next
    start of any server found no model. A record of it made later rollbacks do it again."""
    first = save_model(build_model(), tmp_path)
    second = save_model(build_model("popular"), tmp_path)
    promote(tmp_path, first.name)
    promote(tmp_path, second.name)
    with pytest.raises(ArtifactError, match="is a link, not a model version folder"):
        promote(tmp_path, "current")
    assert current_version(tmp_path) == second.name
    # A history written by the old code, with "current" in it, is read past.
    history = json.loads((tmp_path / "promotions.json").read_text())
    (tmp_path / "promotions.json").write_text(json.dumps([*history[:1], {"version": "current", "at": "x"}, *history[1:]]))
    rollback(tmp_path)
    assert current_version(tmp_path) == first.name


def test_rollback_without_history_is_a_clear_error(tmp_path):
    promote(tmp_path, save_model(build_model(), tmp_path).name)
    with pytest.raises(ArtifactError, match="no earlier promoted model"):
        rollback(tmp_path)

