"""Shared fixtures: real SQLite files, a real MLflow store, the real app.

The embedded MLflow store spends ~10 s creating its tables, so one empty store is made
per session and copied into each test's data directory. The training worker process
is shared by every app in the session (it keys its state by database URL).
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from continual.app import ContinualApp, create_app
from continual.services.worker import Worker
from continual.settings import Settings, load_settings

API_KEY = "test-key-0123456789abcdef"
AUTH = {"authorization": f"Bearer {API_KEY}"}

_INIT_MLFLOW = """
import sys
from pathlib import Path
from continual.adapters import tracking
tracking.configure("sqlite:///" + sys.argv[1], Path(sys.argv[2]), 10, 0)
import mlflow
mlflow.search_experiments()
"""


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow sqlite store to copy."""
    d = tmp_path_factory.mktemp("mlflow-template")
    db = d / "mlflow.db"
    subprocess.run([sys.executable, "-c", _INIT_MLFLOW, str(db), str(d)], check=True, timeout=180)
    return db


@pytest.fixture(scope="session", autouse=True)
def servers_get_a_migrated_mlflow_store(mlflow_template: Path) -> None:
    """Every ``tests.server.Server`` starts from the migrated store (unless it asks not to)."""
    from tests import server

    server.MLFLOW_TEMPLATE = mlflow_template


@pytest.fixture(scope="session")
def worker() -> Iterator[Worker]:
    """One training worker process for the whole session."""
    w = Worker()
    yield w
    w.close()


_counter = itertools.count()


@pytest.fixture(scope="session")
def settings_factory(
    tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path
) -> Callable[..., Settings]:
    """Build settings over a fresh data directory (with a copied MLflow store)."""

    def make(data_dir: Path | None = None, **env: str) -> Settings:
        if data_dir is None:
            data_dir = tmp_path_factory.mktemp(f"data{next(_counter)}")
        data_dir.mkdir(parents=True, exist_ok=True)
        if not (data_dir / "mlflow.db").exists():
            shutil.copy(mlflow_template, data_dir / "mlflow.db")
        base = {
            "CONTINUAL_DATA_DIR": str(data_dir),
            "API_KEY": API_KEY,
            "CONTINUAL_SCHEDULER": "false",
            "CONTINUAL_DASHBOARD": "false",
            "CONTINUAL_MIN_SAMPLES": "50",
            "CONTINUAL_EVAL_WINDOW": "200",
            "CONTINUAL_COOLDOWN_SECONDS": "0",
            "CONTINUAL_LOG_JSON": "true",
            "CONTINUAL_PREDICTION_FLUSH_SECONDS": "0.2",
            "CONTINUAL_MODEL_SYNC_SECONDS": "60",
        }
        base.update(env)
        return load_settings(base, env_file=None)

    return make


class Api(TestClient):  # type: ignore[type-arg]
    """A test client that also exposes the app's services."""

    app_: ContinualApp


@pytest.fixture(scope="session")
def client_factory(
    settings_factory: Callable[..., Settings], worker: Worker
) -> Iterator[Callable[..., Api]]:
    """Start the real app (lifespan included) over real storage; closed at session end."""
    opened: list[Api] = []

    def make(settings: Settings | None = None, auth: bool = True, **env: str) -> Api:
        app = create_app(settings or settings_factory(**env), worker=worker)
        # the whole ASGI app, its request layer (web.front) included, as the server runs it
        client = Api(app, timeout=300)  # type: ignore[arg-type]
        if auth:
            client.headers.update(AUTH)
        client.app_ = app
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for c in opened:
        close(c)


def close(client: Api) -> None:
    """Run the app's shutdown (idempotent)."""
    with contextlib.suppress(RuntimeError):
        client.__exit__(None, None, None)


@pytest.fixture
def api(client_factory: Callable[..., Api]) -> Api:
    """A fresh app with no data and no model."""
    return client_factory()


def train(
    client: Api, n: int = 2000, concept: int = 0, seed: int = 1, n_features: int = 2
) -> dict[str, Any]:
    """Generate rows and retrain; return the retrain verdict."""
    r = client.post(
        "/generate",
        json={"n_samples": n, "concept": concept, "seed": seed, "n_features": n_features},
    )
    assert r.status_code == 200, r.text
    r = client.post("/retrain")
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest.fixture(scope="module")
def trained(client_factory: Callable[..., Api]) -> Api:
    """An app with 2,000 rows of concept 0 and a champion trained on them (shared per module)."""
    client = client_factory()
    verdict = train(client)
    assert verdict["promoted"] is True
    return client


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A real PostgreSQL server for the session (see tests/postgres.py)."""
    from tests.postgres import Postgres

    pg = Postgres().start()
    yield pg
    pg.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The reliability suite runs last: its long scenarios start with the session in the
    background (below), so the rest of the suite runs beside them instead of its tests
    waiting for their figures."""
    items.sort(key=lambda item: "reliability" in Path(str(item.fspath)).parts)


@pytest.fixture(scope="session", autouse=True)
def reliability_background(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The reliability suite's long scenarios (kill -9 trials, locks, outages) mostly wait
    for processes; started with the session, they run beside every other test."""
    if any("reliability" in Path(str(item.fspath)).parts for item in request.session.items):
        from tests.reliability.conftest import start_background

        start_background(request, tmp_path_factory)
