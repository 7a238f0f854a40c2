"""Operating it: Prometheus metrics, the scheduler in a live server, replicas, the client."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from continual.client import ApiError, AsyncClient, Client
from tests.conftest import Api, train
from tests.receiver import Receiver
from tests.server import Server


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} from the exposition text."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_cover_http_and_the_loop(api: Api) -> None:
    """/metrics: requests by route template, predictions by version, retrains, champion info."""
    train(api, n=600)
    api.post("/predict", json={"features": {"feature1": 1.0, "feature2": 2.0}})
    api.post("/predict", json={"rows": [{"feature1": 1.0, "feature2": 2.0}] * 3})
    api.post("/models/1/promote")
    api.post("/check")
    r = api.get("/metrics", headers={"authorization": ""})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    m = samples(r.text)
    assert m[("continual_predictions_total", (("model_version", "1"),))] == 4
    assert (
        m[
            (
                "continual_http_requests_total",
                (("method", "POST"), ("route", "/predict"), ("status", "200")),
            )
        ]
        == 2
    )
    assert (
        "continual_http_requests_total",
        (("method", "POST"), ("route", "/models/{version}/promote"), ("status", "200")),
    ) in m
    assert m[("continual_retrains_total", (("outcome", "promoted"),))] == 1
    assert m[("continual_retrain_duration_seconds_count", ())] == 1
    assert m[("continual_checks_total", (("decision", "insufficient_data"),))] == 1
    assert m[("continual_model_loaded", ())] == 1
    assert m[("continual_promotions_total", ())] == 2
    info = [k for k in m if k[0] == "continual_champion_info"]
    assert dict(info[0][1])["version"] == "1"
    assert m[("continual_prediction_latency_seconds_count", (("kind", "single"),))] == 1
    predict = (("method", "POST"), ("route", "/predict"))
    assert m[("continual_http_request_duration_seconds_count", predict)] == 2
    buckets = sorted(
        (float(dict(k[1])["le"]), v)
        for k, v in m.items()
        if k[0] == "continual_http_request_duration_seconds_bucket"
        and dict(k[1])["route"] == "/predict"
    )
    counts = [v for _le, v in buckets]
    assert counts == sorted(counts)  # cumulative, as Prometheus reads a histogram
    assert buckets[-1] == (float("inf"), 2)
    assert 0 < m[("continual_http_request_duration_seconds_sum", predict)] < 60
    assert m[("continual_http_requests_in_flight", ())] == 1  # the scrape itself


@pytest.fixture
def data_dir(tmp_path: Path, mlflow_template: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    shutil.copy(mlflow_template, d / "mlflow.db")
    return d


def wait(predicate: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_scheduler_checks_in_the_live_server_and_pings_kuma(data_dir: Path) -> None:
    """With a 1 s interval the job checks repeatedly, one at a time, and pings the push monitor."""
    kuma = Receiver()
    srv = Server(
        data_dir,
        {
            "API_KEY": "k" * 32,
            "CHECK_INTERVAL_SECONDS": "1",
            "CONTINUAL_MIN_SAMPLES": "50",
            "CONTINUAL_COOLDOWN_SECONDS": "0",
            "CONTINUAL_KUMA_PUSH_URL": kuma.url,
        },
    ).start()
    try:
        with srv.client() as c:
            c.post("/generate", json={"n_samples": 400, "seed": 1})
            # the scheduler itself trains the first model: no model + enough rows
            wait(lambda: c.get("/ready").status_code == 200, timeout=60)
            first = c.get("/model-status").json()["last_check_at"]
            wait(lambda: c.get("/model-status").json()["last_check_at"] != first)
            started = c.get("/events", params={"kind": "retrain_started"}).json()
            assert started[-1]["data"]["trigger"].startswith("check (scheduler): no model yet")
        checks = [json.loads(line) for line in srv.log().splitlines() if '"event": "check"' in line]
        assert len(checks) >= 2
        assert {c["trigger"] for c in checks} == {"scheduler"}
        assert all(c["job"] == "check" for c in checks)
        kuma.received.clear()
        wait(lambda: len(kuma.paths) >= 2)
        assert "status=up" in kuma.paths[-1]
        assert "msg=" in kuma.paths[-1]
    finally:
        srv.stop()
        kuma.close()


def test_two_replicas_share_one_check_and_the_champion(data_dir: Path) -> None:
    """Two replicas on one database: one runs checks (lease); both serve a new champion within seconds."""
    env = {
        "API_KEY": "k" * 32,
        "CHECK_INTERVAL_SECONDS": "1",
        "CONTINUAL_MODEL_SYNC_SECONDS": "1",
        "CONTINUAL_MIN_SAMPLES": "10000",
    }
    a = Server(data_dir, {**env, "CONTINUAL_REPLICA_ID": "a"}).start()
    b = Server(data_dir, {**env, "CONTINUAL_REPLICA_ID": "b"}).start()
    try:
        with a.client() as ca, b.client() as cb:
            ca.post("/generate", json={"n_samples": 600, "seed": 1})
            assert ca.post("/retrain").json()["version"] == "1"
            x = {"features": {"feature1": 1.0, "feature2": 1.0}}
            wait(lambda: cb.post("/predict", json=x).status_code == 200, timeout=15)
            ca.post("/generate", json={"n_samples": 600, "concept": 1, "seed": 2})
            assert ca.post("/retrain").json()["version"] == "2"
            started = time.monotonic()
            wait(lambda: cb.post("/predict", json=x).json()["model_version"] == "2", timeout=15)
            assert time.monotonic() - started < 5
            time.sleep(3)
        checkers = [s for s in (a, b) if '"event": "check"' in s.log()]
        assert len(checkers) == 1
        # a replica that stops hands the check over at once, not when its lease expires
        other = b if checkers[0] is a else a
        checkers[0].stop()
        wait(lambda: '"event": "check"' in other.log(), timeout=10)
    finally:
        a.stop()
        b.stop()


def test_client_sync_and_async_against_a_live_server(data_dir: Path, tmp_path: Path) -> None:
    """The bundled client does the whole walkthrough; API errors carry status and message."""
    srv = Server(data_dir, {"API_KEY": "k" * 32, "CONTINUAL_SCHEDULER": "false"}).start()
    try:
        with Client(srv.url, api_key=srv.key()) as c:
            assert c.health() == {"status": "ok"}
            assert c.generate(500, seed=3)["accepted"] == 500
            csv = tmp_path / "rows.csv"
            csv.write_text(
                "feature1,feature2,target\n"
                + "".join(f"{i / 10},{-i / 10},{i % 2}\n" for i in range(25))
            )
            progress: list[int] = []
            assert c.ingest_csv(csv, chunk_rows=10, progress=progress.append) == 25
            assert progress == [10, 10, 5]
            assert (
                c.ingest_csv(csv, chunk_rows=10) == 0
            )  # keyed chunks: a retry stores nothing twice
            assert c.data()["rows"] == 525
            assert c.retrain()["promoted"] is True
            p = c.predict({"feature1": 0.1, "feature2": 0.2})
            assert c.feedback([(p["prediction_id"], 1)])["accepted"] == 1
            assert len(c.predict_many([{"feature1": 0.1, "feature2": 0.2}] * 2)["predictions"]) == 2
            assert c.check()["decision"] in {"ok", "insufficient_data"}
            assert c.models()["champion"] == "1"
            assert c.promote("1")["status"] == "champion"
            assert c.events(limit=1)[0]["kind"] == "rollback"
            with pytest.raises(ApiError) as err:
                c.predict({"feature1": 1.0, "feature2": 1.0, "nope": 1})
            assert err.value.status == 422
            assert "nope" in err.value.message

        async def run() -> dict[str, Any]:
            async with AsyncClient(srv.url, api_key=srv.key()) as ac:
                await ac.ingest([{"feature1": 1.0, "feature2": 1.0, "target": 1}])
                status = await ac.status()
                with pytest.raises(ApiError) as bad:
                    await AsyncClient(srv.url, api_key="wrong").data()
                assert bad.value.status == 401
                return status

        assert asyncio.run(run())["model_version"] == "1"
        assert httpx.get(srv.url + "/metrics").status_code == 200
    finally:
        srv.stop()
