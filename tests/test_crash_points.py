"""A crash between the steps of a promotion leaves a consistent state after restart.

The database is the source of truth; MLflow's alias and the in-memory model follow it.
Each test leaves the state exactly as a crash after one step would, then restarts.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from continual.core.ports import RegistryPort
from continual.core.types import ModelRecord
from continual.services.training import train_challenger
from tests.conftest import Api, close, train


def registry_state(registry: RegistryPort) -> tuple[str | None, int]:
    """(version the champion alias names, registered versions): run in the worker."""
    return registry.champion(), registry.count_versions()


def alias_and_count(api: Api) -> tuple[str | None, int]:
    """(version MLflow's alias names, registered versions), read through the worker process."""
    services = api.app_.services
    return asyncio.run(services.worker.run(120, registry_state, services.registry.model_registry))


def registered_but_unrecorded(api: Api) -> Any:
    """Run the worker's part of a retrain (fit, MLflow log, register, local copy) and stop there."""
    services = api.app_.services
    job = services.retrainer._job("crash test")
    registry = services.registry.model_registry
    return asyncio.run(services.worker.run(600, train_challenger, job, registry))


def record_challenger(services: Any, outcome: Any) -> None:
    """What the retrain does right after the worker returns: record the version, unpromoted."""
    services._database.versions.add_version(
        ModelRecord(
            version=outcome.version,
            run_id=outcome.run_id,
            model_type="logistic_regression",
            status="challenger",
            created_at=time.time(),
            promoted_at=None,
            retired_at=None,
            metrics=outcome.metrics,
            params=outcome.params,
            reason=outcome.reason,
            sha256=outcome.sha256,
        ),
        outcome.reference,
    )


def setup_two_versions(settings_factory: Any, client_factory: Any, data: Path) -> tuple[Api, Any]:
    """Version 1 is champion; version 2 is fitted and registered by the worker, nothing more."""
    api = client_factory(settings_factory(data_dir=data, CONTINUAL_TRAIN_WINDOW="600"))
    train(api, n=600)
    api.post("/generate", json={"n_samples": 600, "concept": 1, "seed": 2})
    return api, registered_but_unrecorded(api)


def serving(api: Api) -> str:
    body = api.post("/predict", json={"features": {"feature1": 1.0, "feature2": 1.0}}).json()
    return str(body["model_version"])


def wait_alias(api: Api, version: str) -> tuple[str | None, int]:
    """Poll until the background alias move lands (bounded)."""
    deadline = time.monotonic() + 60
    got = alias_and_count(api)
    while got[0] != version and time.monotonic() < deadline:
        time.sleep(0.3)
        got = alias_and_count(api)
    return got


def restart(settings_factory: Any, client_factory: Any, data: Path) -> Api:
    return client_factory(settings_factory(data_dir=data))


def test_crash_after_registration_before_the_database_record(
    settings_factory: Any, client_factory: Any, tmp_path: Path
) -> None:
    """Registered in MLflow, never recorded: the old champion serves; the orphan is never served."""
    data = tmp_path / "d"
    api, outcome = setup_two_versions(settings_factory, client_factory, data)
    assert (outcome.version, outcome.promoted) == ("2", True)
    close(api)
    again = restart(settings_factory, client_factory, data)
    assert serving(again) == "1"
    assert again.get("/models").json()["champion"] == "1"
    assert [v["version"] for v in again.get("/models").json()["versions"]] == ["1"]
    assert wait_alias(again, "1") == ("1", 2)


def test_crash_after_the_record_before_promotion(
    settings_factory: Any, client_factory: Any, tmp_path: Path
) -> None:
    """Recorded as a challenger, not promoted: the champion is unchanged and the challenger unserved."""
    data = tmp_path / "d"
    api, outcome = setup_two_versions(settings_factory, client_factory, data)
    services = api.app_.services
    record_challenger(services, outcome)
    close(api)
    again = restart(settings_factory, client_factory, data)
    assert serving(again) == "1"
    statuses = {v["version"]: v["status"] for v in again.get("/models").json()["versions"]}
    assert statuses == {"1": "champion", "2": "challenger"}
    # finishing the interrupted promotion by hand is one call
    assert (
        again.post("/models/2/promote", json={"reason": "finish interrupted promotion"}).status_code
        == 200
    )
    assert serving(again) == "2"


def test_crash_after_the_database_promotion_before_swap_and_alias(
    settings_factory: Any, client_factory: Any, tmp_path: Path
) -> None:
    """The database says version 2: after restart memory serves 2 and MLflow's alias follows."""
    data = tmp_path / "d"
    api, outcome = setup_two_versions(settings_factory, client_factory, data)
    services = api.app_.services
    record_challenger(services, outcome)
    services._database.versions.promote(
        "2", time.time(), "gate", ("promoted", "version 2 promoted", {"version": "2"})
    )
    # a half-written temp file from the interrupted write is never loaded
    (data / "models" / "2.pkl.tmp999").write_bytes(b"partial")
    close(api)
    again = restart(settings_factory, client_factory, data)
    assert serving(again) == "2"
    assert again.get("/ready").json()["model_version"] == "2"
    assert wait_alias(again, "2") == ("2", 2)
