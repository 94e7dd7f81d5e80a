"""Shared fixtures: known-answer data, a seeded demo store, a trained model and the Flask app.

Two known-answer stores share one shape: two taste groups that never mix, each
customer buying three of their group's five items in a rotating pattern, so the
right answer is obvious (a customer is recommended the two unbought items of their
own group, never an item of the other group before those).
- ``two_group_matrix``: the index-space matrix (customers 0-9 / 10-19, items 0-4 / 5-9);
- ``write_two_group_store``: the same as CSV files with string ids (customers c0..c5
  buy garden items a0..a4, d0..d5 kitchen items b0..b4), trained into the app's model.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import settings

from recommender.algorithms import create_algorithm
from recommender.artifacts import promote, save_model
from recommender.catalog import load_catalog
from recommender.demo import generate_store, write_store
from recommender.interactions import Interactions
from recommender.model import Model
from recommender.purchases import load_purchases
from recommender.topn import compute_top_lists
from serving import create_app

# Property tests draw examples at random; under CI they draw the same ones every run
# (and keep no example database), so a CI result can be reproduced.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


def two_group_matrix() -> sp.csr_matrix:
    """20 customers x 10 items in two taste groups with an obvious right answer.

    Customers 0-9 buy only items 0-4, customers 10-19 only items 5-9; each buys 3 of
    the 5 items of their group, in a rotating pattern so every item is bought often.
    """
    rows, cols = [], []
    for customer in range(20):
        group = 0 if customer < 10 else 5
        for offset in range(3):
            rows.append(customer)
            cols.append(group + (customer + offset) % 5)
    return sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(20, 10))


@pytest.fixture
def known_answer_matrix() -> sp.csr_matrix:
    return two_group_matrix()


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory):
    """A small seeded demo store written as CSV (purchases + catalog)."""
    folder = tmp_path_factory.mktemp("demo")
    store = generate_store(customers=400, items=120, purchases=8000, seed=7)
    return write_store(store, folder)


GARDEN = [f"a{k}" for k in range(5)]
KITCHEN = [f"b{k}" for k in range(5)]


def bought_by(customer: str) -> list[str]:
    """The three items of a known customer: c<k> buys a<k>, a<k+1>, a<k+2> (mod 5)."""
    group = GARDEN if customer.startswith("c") else KITCHEN
    k = int(customer[1:])
    return [group[(k + j) % 5] for j in range(3)]


def write_two_group_store(folder: Path) -> tuple[Path, Path]:
    """Write purchases.csv and catalog.csv for the two-group store."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["customer_id,item_id"]
    for prefix in ("c", "d"):
        for k in range(6):
            rows += [f"{prefix}{k},{item}" for item in bought_by(f"{prefix}{k}")]
    purchases = folder / "purchases.csv"
    purchases.write_text("\n".join(rows) + "\n")
    catalog = folder / "catalog.csv"
    lines = ["item_id,name,category"]
    lines += [f"{item},Trowel {item},Garden" for item in GARDEN]
    lines += [f"{item},Whisk {item},Kitchen" for item in KITCHEN]
    catalog.write_text("\n".join(lines) + "\n")
    return purchases, catalog


def train_model(data_folder: Path, models_dir: Path, *, make_current: bool = True, top_lists: int = 0) -> Path:
    """Train item-kNN on the two-group store with the library (no training/ imports) and save it,
    with each customer's top ``top_lists`` items and their reasons when given (as training keeps)."""
    purchases, catalog_path = write_two_group_store(data_folder)
    interactions = Interactions.from_log(load_purchases(purchases))
    algorithm = create_algorithm("item-knn").fit(interactions.matrix)
    catalog = load_catalog(catalog_path, interactions.items)
    model = Model(algorithm, interactions.customers, interactions.items, interactions.matrix, catalog)
    if top_lists:
        model.top_lists = compute_top_lists(algorithm, interactions.matrix, top_lists)
    path = save_model(model, models_dir, info={"data": {"fingerprint": interactions.fingerprint()}})
    if make_current:
        promote(models_dir, path.name)
    return path


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory) -> Path:
    """A models folder with one known-answer model promoted to current (built once per run)."""
    root = tmp_path_factory.mktemp("store")
    models_dir = root / "models"
    train_model(root / "data", models_dir)
    return models_dir


@pytest.fixture
def models_dir(tmp_path, trained_models) -> Path:
    """A private copy of the models folder, for tests that promote or damage models."""
    import shutil

    target = tmp_path / "models"
    shutil.copytree(trained_models, target, symlinks=True)
    return target


@pytest.fixture
def app_config(tmp_path, trained_models) -> dict:
    """Settings for a test app: the shared model, a fresh event store."""
    return {"MODEL_PATH": str(trained_models / "current"), "EVENTS_DB": str(tmp_path / "events.sqlite3")}


def _stop_background_threads(application) -> None:
    """A server's worker holds one app for its life; a test run builds hundreds, whose erasure-list
    threads (and their store connections) would otherwise live until a full garbage collection."""
    from serving.state import EXTENSION

    application.extensions[EXTENSION].erasures.close()


@pytest.fixture
def app(app_config):
    """The Flask app under test."""
    application = create_app(app_config)
    application.config["TESTING"] = True
    yield application
    _stop_background_threads(application)


@pytest.fixture
def client(app):
    """Flask's test client for ``app``."""
    return app.test_client()


@pytest.fixture
def make_client(tmp_path, app_config):
    """Build a client for an app with extra settings: ``make_client(API_TOKEN="s")``."""

    built = []

    def build(**settings):
        application = create_app({**app_config, **settings})
        application.config["TESTING"] = True
        built.append(application)
        return application.test_client()

    yield build
    for application in built:
        _stop_background_threads(application)


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def local_spark():
    """One Spark session in local[2] mode for the whole run (real Spark, no mocks)."""
    pytest.importorskip("pyspark", reason="pyspark is not installed: pip install '.[spark]' (make test installs it)")
    from recommender.spark_support import spark_session

    session = spark_session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def postgres_cluster():
    """One throwaway PostgreSQL cluster for the whole run (initdb in a temporary folder, a
    loopback port), removed at the end; skipped only when PostgreSQL is not installed."""
    from tests.postgres_cluster import ThrowawayCluster, why_unavailable

    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    cluster = ThrowawayCluster().start()
    yield cluster
    cluster.remove()


@pytest.fixture
def postgres_url(postgres_cluster) -> str:
    """A URL to a schema of its own in the session's cluster: every test starts empty,
    without the cost of a database per test."""
    import uuid

    import psycopg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_cluster.url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    return f"{postgres_cluster.url}?options=-csearch_path%3D{schema}"
