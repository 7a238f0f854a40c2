"""Against the real server process on 127.0.0.1: start-up, hot swaps under load, shutdown."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.server import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path) -> Iterator[Server]:
    """One real server with a generated key, two trained versions (concept 0 and 1)."""
    data = tmp_path_factory.mktemp("server") / "data"
    data.mkdir()
    shutil.copy(mlflow_template, data / "mlflow.db")
    srv = Server(data, {"CONTINUAL_SCHEDULER": "false", "CONTINUAL_TRAIN_WINDOW": "1000"}).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_serve_generates_a_key_and_says_where(server: Server) -> None:
    """With no API_KEY the server writes one (0600) and its log names the file, not the key."""
    key_file = server.data_dir / "api_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    log = server.log()
    assert str(key_file) in log
    assert server.key() not in log
    assert httpx.get(server.url + "/data").status_code == 401


def test_predictions_never_fail_while_models_swap(server: Server) -> None:
    """Concurrent predictions during 10 hot swaps: all succeed, each matches its version."""
    with server.client() as c:
        for concept, seed in ((0, 1), (1, 2)):
            assert (
                c.post(
                    "/generate", json={"n_samples": 1000, "concept": concept, "seed": seed}
                ).status_code
                == 200
            )
            assert c.post("/retrain").json()["promoted"] is True
    x = {"feature1": 1.5, "feature2": 1.5}

    async def run() -> tuple[list[tuple[int, str, Any]], int]:
        headers = {"authorization": f"Bearer {server.key()}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
            stop = asyncio.Event()
            seen: list[tuple[int, str, Any]] = []

            async def predict_loop() -> None:
                while not stop.is_set():
                    r = await client.post("/predict", json={"features": x})
                    body = r.json()
                    seen.append(
                        (r.status_code, body.get("model_version", ""), body.get("prediction"))
                    )

            async def swap_loop() -> int:
                swaps = 0
                for i in range(10):
                    r = await client.post(f"/models/{'1' if i % 2 == 0 else '2'}/promote")
                    assert r.status_code == 200, r.text
                    swaps += 1
                    await asyncio.sleep(0.05)
                stop.set()
                return swaps

            tasks = [asyncio.create_task(predict_loop()) for _ in range(8)]
            swaps = await swap_loop()
            await asyncio.gather(*tasks)
            return seen, swaps

    seen, swaps = asyncio.run(run())
    assert swaps == 10
    assert len(seen) > 50
    assert all(status == 200 for status, _, _ in seen)
    by_version: dict[str, set[Any]] = {}
    for _, version, prediction in seen:
        by_version.setdefault(version, set()).add(prediction)
    assert set(by_version) == {"1", "2"}
    # concept 1 mirrors concept 0: each version answers this row its own, single way
    assert all(len(p) == 1 for p in by_version.values())
    assert by_version["1"] != by_version["2"]


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/PID/maps (Linux)")
def test_serving_never_loads_scikit_learn_scipy_or_pandas(
    tmp_path: Path, mlflow_template: Path
) -> None:
    """The server serves a champion, ingests JSON and CSV, runs a check and swaps models
    without loading scikit-learn, scipy or pandas (a worker unpickles each version): about
    140 MiB of resident memory it does not carry. (``/generate``'s demo data does load
    scikit-learn: it is not used here.)"""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(mlflow_template, data / "mlflow.db")
    srv = Server(data, {"CONTINUAL_SCHEDULER": "false"}).start()
    try:
        rng = np.random.default_rng(5)
        x = rng.normal(size=(900, 2))
        y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
        rows = [
            {"feature1": a, "feature2": b, "target": int(t)} for (a, b), t in zip(x, y, strict=True)
        ]
        csv = "".join(f"{a},{b},{t}\n" for (a, b), t in zip(x[600:], y[600:], strict=True))
        with srv.client() as c:
            assert c.post("/data", json={"rows": rows[:600]}).status_code == 200
            assert c.post("/retrain").json()["promoted"] is True
            r = c.post(
                "/data",
                content="feature1,feature2,target\n" + csv,
                headers={"content-type": "text/csv"},
            )
            assert r.status_code == 200, r.text
            assert r.json()["scored_by"] == "1"
            assert c.post("/check").status_code == 200
            served = c.post("/predict", json={"features": {"feature1": 1.0, "feature2": 0.5}})
            assert served.json()["prediction"] == 1
            assert c.post("/models/1/promote").status_code == 200
            assert c.get("/model-status").json()["drift"] is not None
        assert srv.proc is not None
        maps = Path(f"/proc/{srv.proc.pid}/maps").read_text()
        assert "/pyarrow/" in maps  # the CSV took arrow's parse (its to_numpy imports pandas)
        for package in ("sklearn", "scipy", "pandas"):
            assert f"/{package}/" not in maps, package
    finally:
        srv.stop()


def test_sigterm_stops_cleanly_and_flushes(tmp_path: Path, mlflow_template: Path) -> None:
    """SIGTERM: buffered prediction logs reach the database and the process exits fast."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(mlflow_template, data / "mlflow.db")
    srv = Server(
        data,
        {
            "API_KEY": "k" * 32,
            "CONTINUAL_PREDICTION_FLUSH_SECONDS": "60",
            "CONTINUAL_SCHEDULER": "false",
        },
    ).start()
    with srv.client() as c:
        c.post("/generate", json={"n_samples": 500, "seed": 1})
        c.post("/retrain")
        ids = [
            c.post("/predict", json={"features": {"feature1": 0.1, "feature2": 0.2}}).json()[
                "prediction_id"
            ]
            for _ in range(5)
        ]
    started = time.monotonic()
    assert srv.stop(signal.SIGTERM) is not None
    assert time.monotonic() - started < 10
    again = Server(data, {"API_KEY": "k" * 32, "CONTINUAL_SCHEDULER": "false"}).start()
    try:
        with again.client() as c:
            r = c.post("/feedback", json={"items": [{"prediction_id": i, "label": 1} for i in ids]})
            assert r.json()["accepted"] == 5
    finally:
        again.stop()
