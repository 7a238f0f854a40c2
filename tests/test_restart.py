"""After a restart the champion comes back and serves the same predictions."""

from __future__ import annotations

import socket
from typing import Any

from tests.conftest import close, train

ROWS = [{"feature1": x / 7, "feature2": (x % 5) - 2.0} for x in range(-20, 20)]


def closed_port() -> int:
    """A local port with nothing listening (MLflow 'unreachable')."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def predictions(client: Any) -> list[dict[str, float]]:
    body = client.post("/predict", json={"rows": ROWS}).json()
    return [(p["model_version"], p["probabilities"]) for p in body["predictions"]]


def test_restart_brings_the_same_champion_back(
    settings_factory: Any, client_factory: Any, tmp_path: Any
) -> None:
    """Same version, same probabilities after the process restarts."""
    settings = settings_factory(data_dir=tmp_path / "d")
    first = client_factory(settings)
    train(first, n=1000)
    before = predictions(first)
    close(first)
    second = client_factory(settings_factory(data_dir=tmp_path / "d"))
    assert second.get("/ready").status_code == 200
    assert predictions(second) == before
    assert second.get("/model-status").json()["model_version"] == "1"


def test_restart_without_mlflow_uses_the_local_copy(
    settings_factory: Any, client_factory: Any, tmp_path: Any
) -> None:
    """MLflow unreachable at start-up: the verified local copy serves."""
    first = client_factory(settings_factory(data_dir=tmp_path / "d"))
    train(first, n=1000)
    before = predictions(first)
    close(first)
    offline = settings_factory(
        data_dir=tmp_path / "d",
        MLFLOW_TRACKING_URI=f"http://127.0.0.1:{closed_port()}",
        CONTINUAL_MLFLOW_TIMEOUT_SECONDS="1",
        CONTINUAL_MLFLOW_MAX_RETRIES="0",
    )
    second = client_factory(offline)
    assert predictions(second) == before


def test_missing_or_tampered_local_copy_is_fetched_from_mlflow(
    settings_factory: Any, client_factory: Any, tmp_path: Any
) -> None:
    """A local copy that is gone or altered is never loaded: MLflow's copy is verified and used."""
    first = client_factory(settings_factory(data_dir=tmp_path / "d"))
    train(first, n=1000)
    before = predictions(first)
    close(first)
    local = tmp_path / "d" / "models" / "1.pkl"
    good = local.read_bytes()
    local.write_bytes(good[:-10] + b"x" * 10)
    second = client_factory(settings_factory(data_dir=tmp_path / "d"))
    assert predictions(second) == before
    assert local.read_bytes() == good
    close(second)
    local.unlink()
    third = client_factory(settings_factory(data_dir=tmp_path / "d"))
    assert predictions(third) == before
    assert local.read_bytes() == good


def test_alias_follows_the_database_champion(
    settings_factory: Any, client_factory: Any, tmp_path: Any
) -> None:
    """MLflow's champion alias is moved to match the database after a promotion."""
    from tests.test_crash_points import wait_alias

    api = client_factory(settings_factory(data_dir=tmp_path / "d", CONTINUAL_TRAIN_WINDOW="1000"))
    train(api, n=1000)
    train(api, n=1000, concept=1, seed=2)
    assert wait_alias(api, "2") == ("2", 2)
    api.post("/models/1/promote")
    assert wait_alias(api, "1") == ("1", 2)
