"""Serving: the Open Inference Protocol (V2), columnar batches and the request layer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import Api
from tests.server import Server

PAIR = {"feature1": [0.3, -1.0], "feature2": [-1.2, 2.0]}


def _rows(columns: dict[str, list[float]]) -> list[dict[str, float]]:
    return [dict(zip(columns, v, strict=True)) for v in zip(*columns.values(), strict=True)]


def test_v2_metadata_and_probes(trained: Api) -> None:
    """/v2, the health probes and model metadata describe the live champion and schema."""
    assert trained.get("/v2").json()["name"] == "continual"
    assert trained.get("/v2/health/live").json() == {"ready": True}
    assert trained.get("/v2/health/ready").status_code == 200
    meta = trained.get("/v2/models/continual").json()
    assert meta["versions"] == ["1"]
    assert meta["inputs"] == [
        {"name": "feature1", "datatype": "FP64", "shape": [-1]},
        {"name": "feature2", "datatype": "FP64", "shape": [-1]},
    ]
    assert {o["name"] for o in meta["outputs"]} == {
        "predict",
        "predict_proba",
        "confidence",
        "prediction_id",
    }
    assert trained.get("/v2/models/continual/ready").json() == {"ready": True, "name": "continual"}
    assert trained.get("/v2/models/other").status_code == 404


def test_v2_infer_both_tabular_forms_match_predict(trained: Api) -> None:
    """Infer with one tensor per feature, or one [N, F] tensor, gives /predict's answers,
    and its prediction ids take feedback."""
    expected = trained.post("/predict", json={"rows": _rows(PAIR)}).json()["predictions"]
    per_feature = {
        "id": "req-1",
        "inputs": [
            {"name": n, "shape": [2], "datatype": "FP64", "data": v} for n, v in PAIR.items()
        ],
    }
    matrix = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [2, 2],
                "datatype": "FP64",
                "data": [[0.3, -1.2], [-1.0, 2.0]],
            }
        ],
        "outputs": [{"name": "predict"}, {"name": "prediction_id"}],
    }
    for body in (per_feature, matrix):
        r = trained.post("/v2/models/continual/versions/1/infer", json=body)
        assert r.status_code == 200, r.text
        out = {o["name"]: o for o in r.json()["outputs"]}
        assert out["predict"]["data"] == [p["prediction"] for p in expected]
        assert out["predict"]["shape"] == [2]
        ids = out["prediction_id"]["data"]
    assert r.json()["model_version"] == "1"
    full = trained.post("/v2/models/continual/infer", json=per_feature).json()
    assert full["id"] == "req-1"
    proba = next(o for o in full["outputs"] if o["name"] == "predict_proba")
    assert proba["shape"] == [2, 2]
    assert proba["parameters"] == {"classes": ["0", "1"]}
    assert np.allclose(
        np.reshape(proba["data"], (2, 2)),
        [[p["probabilities"]["0"], p["probabilities"]["1"]] for p in expected],
    )
    fed = trained.post("/feedback", json={"items": [{"prediction_id": ids[0], "label": 1}]}).json()
    assert fed["accepted"] == 1


def test_v2_infer_of_one_row_is_a_single_row_predict(trained: Api) -> None:
    """One row through V2 (either form) answers what `{"features": ...}` does, with every
    output, and its id takes feedback."""
    row = {"feature1": 0.7, "feature2": -0.4}
    want = trained.post("/predict", json={"features": row}).json()
    forms = [
        [{"name": n, "shape": [1], "datatype": "FP64", "data": [v]} for n, v in row.items()],
        [{"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [[0.7, -0.4]]}],
    ]
    for inputs in forms:
        got = trained.post("/v2/models/continual/infer", json={"inputs": inputs}).json()
        out = {o["name"]: o for o in got["outputs"]}
        assert got["model_version"] == want["model_version"]
        assert out["predict"]["data"] == [want["prediction"]]
        assert (out["predict"]["shape"], out["predict"]["datatype"]) == ([1], "INT64")
        assert out["predict_proba"]["shape"] == [1, 2]
        assert out["predict_proba"]["parameters"] == {"classes": ["0", "1"]}
        assert out["predict_proba"]["data"] == [want["probabilities"][k] for k in ("0", "1")]
        assert out["confidence"]["data"] == [want["confidence"]]
        pid = out["prediction_id"]["data"][0]
        assert pid != want["prediction_id"]
        fed = trained.post("/feedback", json={"items": [{"prediction_id": pid, "label": 0}]})
        assert fed.json()["accepted"] == 1
    bad = trained.post(
        "/v2/models/continual/infer",
        json={
            "inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [1, True]}]
        },
    )
    assert bad.status_code == 422
    assert "inputs" in bad.json()["error"]


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        (
            "/v2/models/continual/infer",
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]},
            422,
            "inputs",
        ),
        (
            "/v2/models/continual/infer",
            {
                "inputs": [
                    {"name": "feature1", "shape": [1], "datatype": "BYTES", "data": ["a"]},
                    {"name": "feature2", "shape": [1], "datatype": "FP64", "data": [1.0]},
                ]
            },
            422,
            "feature1",
        ),
        (
            "/v2/models/continual/infer",
            {
                "inputs": [
                    {"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}
                ],
                "outputs": [{"name": "nope"}],
            },
            422,
            "outputs",
        ),
        (
            "/v2/models/continual/infer",
            {
                "inputs": [
                    {"name": "input-0", "shape": [2, 2], "datatype": "FP64", "data": [[1, 2], 3]}
                ]
            },
            422,
            "inputs",
        ),
        (
            "/v2/models/continual/versions/9/infer",
            {"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]},
            404,
            "version",
        ),
    ],
)
def test_v2_bad_requests_name_the_field(
    trained: Api, path: str, body: dict[str, object], status: int, field: str
) -> None:
    """A bad infer request is a 4xx whose detail names what was wrong."""
    r = trained.post(path, json=body)
    assert r.status_code == status, r.text
    assert r.json()["detail"]["field"] == field


def test_columnar_batches_in_and_out(trained: Api) -> None:
    """`columns` in and `output: columns` out give the rows form's predictions, in arrays."""
    rows = trained.post("/predict", json={"rows": _rows(PAIR)}).json()["predictions"]
    r = trained.post("/predict", json={"columns": PAIR, "output": "columns"}).json()
    cols = r["columns"]
    assert cols["prediction"] == [p["prediction"] for p in rows]
    assert np.allclose(cols["probabilities"]["1"], [p["probabilities"]["1"] for p in rows])
    assert len(set(cols["prediction_id"])) == 2
    as_rows = trained.post("/predict", json={"columns": PAIR}).json()
    assert [p["prediction"] for p in as_rows["predictions"]] == cols["prediction"]
    fed = trained.post(
        "/feedback", json={"items": [{"prediction_id": cols["prediction_id"][1], "label": 0}]}
    ).json()
    assert fed["accepted"] == 1
    bad = trained.post("/predict", json={"columns": {**PAIR, "feature2": [1.0]}})
    assert (bad.status_code, bad.json()["detail"]) == (422, {"field": "feature2"})
    bad = trained.post("/predict", json={"columns": {**PAIR, "feature1": [0.1, True]}})
    assert bad.status_code == 422
    assert "columns[1].feature1" in bad.json()["error"]


@pytest.fixture(scope="module")
def quiet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A live server on 127.0.0.1 with the access log off."""
    server = Server(
        tmp_path_factory.mktemp("quiet") / "data",
        {"CONTINUAL_ACCESS_LOG": "off", "CONTINUAL_SCHEDULER": "false"},
    ).start()
    with server.client() as c:
        c.post("/generate", json={"n_samples": 500, "seed": 3})
        assert c.post("/retrain").json()["promoted"] is True
    yield server
    server.stop()


def _log_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.startswith("{")]


def test_request_layer_logs_errors_counts_everything(quiet: Server) -> None:
    """With the access log off, a failed request is still logged once with its id, a good
    one is not, both carry an X-Request-Id and both are counted in /metrics."""
    with quiet.client() as c:
        good = c.post("/predict", json={"features": {"feature1": 0.1, "feature2": 0.2}})
        bad = c.post(
            "/predict",
            json={"features": {"feature1": "x", "feature2": 0.2}},
            headers={"X-Request-Id": "bad-one-7"},
        )
        unauthorised = c.post(
            "/predict", json={"features": {}}, headers={"Authorization": "Bearer wrong"}
        )
        metrics = c.get("/metrics").text
    assert good.status_code == 200
    assert good.headers["x-request-id"]
    assert bad.status_code == 422
    assert bad.headers["x-request-id"] == "bad-one-7"
    assert unauthorised.status_code == 401
    lines = [x for x in _log_lines(quiet.log_path) if x.get("event") == "request"]
    assert {(x["status"], x["route"]) for x in lines} >= {(422, "/predict"), (401, "/predict")}
    assert not [x for x in lines if x["status"] == 200 and x["route"] == "/predict"]
    assert [x["request_id"] for x in lines if x["status"] == 422] == ["bad-one-7"]
    for status in ("200", "401", "422"):
        assert f'route="/predict",status="{status}"' in metrics


def _requests_logged(server: Server) -> list[dict[str, object]]:
    return [x for x in _log_lines(server.log_path) if x.get("event") == "request"]


def test_access_log_on_sampled_and_slow(tmp_path: Path) -> None:
    """``on`` logs every request with its own id; ``sampled`` about its share of the
    good ones, every failed one, and a slow one at warning whatever the sample."""
    on = Server(
        tmp_path / "on", {"CONTINUAL_ACCESS_LOG": "on", "CONTINUAL_SCHEDULER": "false"}
    ).start()
    try:
        with on.client() as c:
            ids = {c.get("/health").headers["x-request-id"] for _ in range(20)}
    finally:
        on.stop()
    lines = [x for x in _requests_logged(on) if x["request_id"] in ids]
    assert len(ids) == 20
    assert len(lines) == 20
    assert {x["route"] for x in lines} == {"/health"}
    assert all(x["level"] == "info" and x["status"] == 200 for x in lines)

    sampled = Server(
        tmp_path / "sampled",
        {
            "CONTINUAL_ACCESS_LOG": "sampled",
            "CONTINUAL_ACCESS_LOG_SAMPLE": "0.5",
            "CONTINUAL_SLOW_REQUEST_MS": "150",
            "CONTINUAL_SCHEDULER": "false",
        },
    ).start()
    try:
        with sampled.client() as c:
            for _ in range(400):
                assert c.get("/health").status_code == 200
            c.post("/generate", json={"n_samples": 300, "seed": 5})
            retrain = c.post("/retrain", headers={"X-Request-Id": "slow-retrain-1"})
            errors = [c.post("/predict", json={"features": {}}).status_code for _ in range(10)]
    finally:
        sampled.stop()
    assert set(errors) == {422}
    assert retrain.status_code == 200
    lines = _requests_logged(sampled)
    health = [x for x in lines if x["route"] == "/health"]
    assert 120 <= len(health) <= 300  # 200 expected; 8 standard deviations either side
    assert len([x for x in lines if x["status"] == 422]) == 10
    slow = [x for x in lines if x["request_id"] == "slow-retrain-1"]
    assert len(slow) == 1
    assert slow[0]["level"] == "warning"
    assert float(str(slow[0]["duration_ms"])) >= 150


def test_tritonclient_calls_continual_unchanged(quiet: Server) -> None:
    """Triton's own HTTP client reads the metadata and infers against continual."""
    import tritonclient.http as triton

    client = triton.InferenceServerClient(f"127.0.0.1:{quiet.port}")
    headers = {"Authorization": f"Bearer {quiet.key()}"}
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("continual", headers=headers)
    meta = client.get_model_metadata("continual", headers=headers)
    assert [i["name"] for i in meta["inputs"]] == ["feature1", "feature2"]
    inputs = []
    for name, values in PAIR.items():
        tensor = triton.InferInput(name, [2], "FP64")
        tensor.set_data_from_numpy(np.asarray(values, dtype=np.float64), binary_data=False)
        inputs.append(tensor)
    wanted = [triton.InferRequestedOutput("predict_proba", binary_data=False)]
    result = client.infer("continual", inputs, outputs=wanted, headers=headers)
    proba = result.as_numpy("predict_proba")
    assert proba is not None
    assert proba.shape == (2, 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    expected = httpx.post(
        f"{quiet.url}/predict", json={"rows": _rows(PAIR)}, headers=headers
    ).json()["predictions"]
    assert np.allclose(proba[:, 1], [p["probabilities"]["1"] for p in expected])
    client.close()
