"""The same code on PostgreSQL: the loop in-process, and two replicas sharing one database."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from tests.conftest import train
from tests.server import Server
from tests.test_loop import stream


def test_the_loop_runs_on_postgresql(client_factory: Any, postgres: Any) -> None:
    """Ingest, retrain, predict, feedback, drift, promotion and rollback on PostgreSQL."""
    api = client_factory(DATABASE_URL=postgres.database(), CONTINUAL_MIN_SAMPLES="100")
    train(api, n=1500)
    csv = "feature1,feature2,target\n0.1,-1.3,1\n2.0,2.0,0\n"
    assert (
        api.post("/data", content=csv, headers={"content-type": "text/csv"}).json()["accepted"] == 2
    )
    assert stream(api, 200, 0, 3) > 0.9
    assert api.post("/check").json()["decision"] == "ok"
    assert stream(api, 200, 1, 4) < 0.2
    drifted = api.post("/check").json()
    assert drifted["decision"] == "retrain"
    assert drifted["retrain"]["promoted"] is True
    assert api.post("/models/1/promote").status_code == 200
    summary = api.get("/data").json()
    assert summary["rows"] == 1500 + 2 + 400
    kinds = [e["kind"] for e in api.get("/events").json()]
    assert kinds[:2] == ["rollback", "promoted"]
    again = api.post(
        "/data",
        json={"rows": [{"feature1": 1, "feature2": 1, "target": 1}]},
        headers={"idempotency-key": "k1"},
    )
    dup = api.post(
        "/data",
        json={"rows": [{"feature1": 1, "feature2": 1, "target": 1}]},
        headers={"idempotency-key": "k1"},
    )
    assert (again.json()["duplicate"], dup.json()["duplicate"]) == (False, True)


def test_two_replicas_on_postgresql(tmp_path: Path, mlflow_template: Path, postgres: Any) -> None:
    """Two servers on one PostgreSQL: one checks at a time, both serve the new champion."""
    url = postgres.database()
    servers = []
    for name in ("a", "b"):
        data = tmp_path / name
        data.mkdir()
        shutil.copy(mlflow_template, data / "mlflow.db")
        env = {
            "API_KEY": "k" * 32,
            "DATABASE_URL": url,
            "CHECK_INTERVAL_SECONDS": "1",
            "CONTINUAL_MODEL_SYNC_SECONDS": "1",
            "CONTINUAL_MIN_SAMPLES": "10000",
            "CONTINUAL_REPLICA_ID": name,
            # both replicas share one MLflow store, as they would share one MLflow server
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'a' / 'mlflow.db'}",
        }
        servers.append(Server(data, env).start())
    a, b = servers
    try:
        with a.client() as ca, b.client() as cb:
            ca.post("/generate", json={"n_samples": 600, "seed": 1})
            assert ca.post("/retrain").json()["version"] == "1"
            x = {"features": {"feature1": 1.0, "feature2": 1.0}}
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and cb.post("/predict", json=x).status_code != 200:
                time.sleep(0.2)
            assert cb.post("/predict", json=x).json()["model_version"] == "1"
            time.sleep(3)
        assert sum('"event": "check"' in s.log() for s in servers) == 1
    finally:
        for s in servers:
            s.stop()
