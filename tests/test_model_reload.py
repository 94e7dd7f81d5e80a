"""Swapping models: admin reload, automatic pick-up of a promotion, bad models refused."""

from __future__ import annotations

import os
from pathlib import Path

from recommender.artifacts import promote
from serving import create_app
from tests.conftest import train_model


def version(client) -> str:
    return client.get("/v1/model").get_json()["version"]


def corrupt_copy(models_dir: Path) -> str:
    """A new model folder whose array no longer matches its checksum."""
    fresh = train_model(models_dir.parent / "data2", models_dir, make_current=False)
    target = fresh / "item_ids.npy"
    target.write_bytes(target.read_bytes()[:-4] + b"XXXX")
    return fresh.name


def point_current_at(models_dir: Path, name: str) -> None:
    # What a careless deploy script might do: promote() itself refuses damaged folders.
    temporary = models_dir / ".current-test"
    os.symlink(name, temporary)
    os.replace(temporary, models_dir / "current")


def test_admin_reload_swaps_to_the_promoted_model(models_dir, tmp_path):
    client = create_app({"MODEL_PATH": str(models_dir / "current"), "EVENTS_DB": str(tmp_path / "e.db"), "MODEL_CHECK_SECONDS": 3600}).test_client()
    old = version(client)
    new = train_model(tmp_path / "data2", models_dir, make_current=False)
    promote(models_dir, new.name)
    assert version(client) == old  # not checked again for an hour
    body = client.post("/v1/admin/reload").get_json()
    assert body == {"model_version": new.name, "previous_version": old}
    assert client.get("/v1/customers/c0/recommendations").get_json()["model_version"] == new.name


def test_workers_pick_up_a_promotion_by_themselves(models_dir, tmp_path):
    client = create_app({"MODEL_PATH": str(models_dir / "current"), "EVENTS_DB": str(tmp_path / "e.db"), "MODEL_CHECK_SECONDS": 0}).test_client()
    new = train_model(tmp_path / "data2", models_dir, make_current=False)
    promote(models_dir, new.name)
    assert version(client) == new.name
    text = client.get("/metrics").get_data(as_text=True)
    assert f'recommender_model_info{{algorithm="item-knn",version="{new.name}"}} 1.0' in text


def test_a_bad_new_model_is_logged_and_the_old_one_keeps_serving(models_dir, tmp_path, caplog):
    client = create_app({"MODEL_PATH": str(models_dir / "current"), "EVENTS_DB": str(tmp_path / "e.db"), "MODEL_CHECK_SECONDS": 0}).test_client()
    old = version(client)
    point_current_at(models_dir, corrupt_copy(models_dir))
    response = client.get("/v1/customers/c0/recommendations?n=2")
    assert response.status_code == 200 and response.get_json()["model_version"] == old
    assert "checksum mismatch" in caplog.text
    reload = client.post("/v1/admin/reload")
    assert reload.status_code == 409 and reload.get_json()["error"]["code"] == "reload_failed"
    assert version(client) == old
    assert 'recommender_model_reloads_total{outcome="failed"}' in client.get("/metrics").get_data(as_text=True)
