"""The happy path of every route in the contract, through the real app."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import Api, train


def test_health_is_open_and_ok(api: Api) -> None:
    """GET /health answers 200 {"status": "ok"} without a key."""
    r = api.get("/health", headers={"authorization": ""})
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


def test_ready_is_503_without_a_model_then_200(api: Api) -> None:
    """/ready says why it is not ready until a model is loaded."""
    r = api.get("/ready")
    assert r.status_code == 503
    assert r.json() == {
        "status": "not_ready",
        "reason": "no model is loaded",
        "model_version": None,
    }
    train(api, n=500)
    r = api.get("/ready")
    assert r.status_code == 200
    assert r.json()["model_version"] == "1"


def test_generate_is_deterministic_per_concept_and_seed(api: Api) -> None:
    """The same concept and seed give the same rows; the label column is target."""
    body = {"n_samples": 300, "n_features": 3, "concept": 0, "seed": 7}
    first = api.post("/generate", json=body).json()
    assert first == {
        "accepted": 300,
        "concept": 0,
        "seed": 7,
        "n_features": 3,
        "scored_by": None,
        "correct": None,
    }
    api.post("/generate", json=body)
    summary = api.get("/data").json()
    assert summary["rows"] == 600
    assert set(summary["labels"]) == {"0", "1"}
    assert summary["first_at"] <= summary["last_at"]
    assert api.get("/features").json() == {
        "features": [
            {"name": "feature1", "kind": "numeric"},
            {"name": "feature2", "kind": "numeric"},
            {"name": "feature3", "kind": "numeric"},
        ],
        "label": "target",
        "label_kind": "int",
    }


def test_retrain_promotes_first_model_and_tracks_it(api: Api) -> None:
    """The first retrain registers version 1 in MLflow and promotes it."""
    verdict = train(api, n=2000)
    assert verdict["version"] == "1"
    assert verdict["promoted"] is True
    assert verdict["champion_accuracy"] is None
    assert verdict["challenger_accuracy"] >= 0.9
    assert len(verdict["run_id"]) == 32
    models = api.get("/models").json()
    assert models["champion"] == "1"
    v1 = models["versions"][0]
    assert (v1["version"], v1["status"], v1["model_type"]) == (
        "1",
        "champion",
        "logistic_regression",
    )
    assert v1["params"]["window_rows"] == "1950"  # 2,000 rows less the 50-row holdout
    assert v1["params"]["holdout_rows"] == "50"  # a quarter of the evaluation window
    assert 50 <= int(v1["params"]["n_samples"]) <= 1950  # the window search's pick
    assert v1["params"]["seed"] == "42"
    assert models["served"][0]["version"] == "1"
    assert models["served"][0]["ended_at"] is None


def test_predict_single_and_batch(trained: Api) -> None:
    """Single and batch predictions carry label, probabilities, confidence, version and id."""
    r = trained.post("/predict", json={"features": {"feature1": 0.1, "feature2": -1.3}})
    assert r.status_code == 200, r.text
    one = r.json()
    assert set(one) == {
        "prediction",
        "probabilities",
        "confidence",
        "model_version",
        "prediction_id",
    }
    assert one["prediction"] in (0, 1)
    assert set(one["probabilities"]) == {"0", "1"}
    assert abs(sum(one["probabilities"].values()) - 1) < 1e-9
    assert one["confidence"] == max(one["probabilities"].values())
    assert one["probabilities"][str(one["prediction"])] == one["confidence"]
    assert one["model_version"] == "1"
    rows = [{"feature1": x / 10, "feature2": -x / 10} for x in range(-20, 20)]
    batch = trained.post("/predict", json={"rows": rows}).json()
    assert batch["model_version"] == "1"
    assert len(batch["predictions"]) == 40
    assert len({p["prediction_id"] for p in batch["predictions"]}) == 40
    # ids grow with time (the log's index is appended to, not scattered into)
    time.sleep(0.002)
    later = trained.post("/predict", json={"features": rows[0]}).json()["prediction_id"]
    assert all(later > p["prediction_id"] for p in batch["predictions"])
    # a batch answers as single requests do (to the last bits of a float: BLAS takes
    # another kernel for one row than for forty)
    single = trained.post("/predict", json={"features": rows[3]}).json()
    assert batch["predictions"][3]["prediction"] == single["prediction"]
    assert batch["predictions"][3]["probabilities"] == pytest.approx(
        single["probabilities"], abs=1e-12
    )


def test_feedback_attaches_labels_by_id(trained: Api) -> None:
    """Feedback is accepted for known ids; unknown and repeated ids are reported."""
    preds = trained.post("/predict", json={"rows": [{"feature1": 1.0, "feature2": 1.0}] * 3}).json()
    ids = [p["prediction_id"] for p in preds["predictions"]]
    before = trained.get("/data").json()["rows"]
    body = {
        "items": [{"prediction_id": i, "label": 1} for i in ids]
        + [{"prediction_id": "nope", "label": 0}]
    }
    r = trained.post("/feedback", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "accepted": 3,
        "unknown": ["nope"],
        "duplicate": [],
        "duplicate_batch": False,
    }
    assert trained.get("/data").json()["rows"] == before + 3
    again = trained.post(
        "/feedback", json={"items": [{"prediction_id": ids[0], "label": 0}]}
    ).json()
    assert again == {"accepted": 0, "unknown": [], "duplicate": [ids[0]], "duplicate_batch": False}


def test_data_accepts_json_and_csv(trained: Api) -> None:
    """POST /data stores JSON rows and CSV, scoring each row with the live champion."""
    before = trained.get("/data").json()["rows"]
    r = trained.post("/data", json={"rows": [{"feature1": 0.5, "feature2": 0.2, "target": 1}]})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1
    assert r.json()["scored_by"] == "1"
    csv = "feature1,feature2,target\n0.1,-1.3,1\n2.0,2.0,0\n"
    r = trained.post("/data", content=csv, headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 2
    assert trained.get("/data").json()["rows"] == before + 3


def test_idempotency_key_stores_a_batch_once(trained: Api) -> None:
    """A retried batch with the same Idempotency-Key is not stored twice."""
    before = trained.get("/data").json()["rows"]
    body = {"rows": [{"feature1": 0.5, "feature2": 0.2, "target": 1}] * 4}
    headers = {"idempotency-key": "batch-42"}
    first = trained.post("/data", json=body, headers=headers).json()
    second = trained.post("/data", json=body, headers=headers).json()
    assert (first["accepted"], first["duplicate"]) == (4, False)
    assert (second["accepted"], second["duplicate"]) == (0, True)
    assert trained.get("/data").json()["rows"] == before + 4


def test_an_idempotency_key_reused_for_another_batch_is_a_409(trained: Api) -> None:
    """A key seen before with a different batch (JSON or CSV, or feedback) stores nothing
    and answers 409 naming the reuse; the same batch again is still a duplicate."""
    before = trained.get("/data").json()["rows"]
    headers = {"idempotency-key": "batch-43"}
    body = {"rows": [{"feature1": 0.5, "feature2": 0.2, "target": 1}] * 3}
    assert trained.post("/data", json=body, headers=headers).json()["accepted"] == 3
    other = {"rows": [{"feature1": 0.5, "feature2": 0.3, "target": 1}] * 3}
    reused = trained.post("/data", json=other, headers=headers)
    assert reused.status_code == 409, reused.text
    assert "batch-43" in reused.json()["error"]
    assert "different batch" in reused.json()["error"]
    assert reused.json()["detail"]["reason"] == "key_reused"
    as_csv = trained.post(
        "/data",
        content="feature1,feature2,target\n0.5,0.2,0\n",
        headers={**headers, "content-type": "text/csv"},
    )
    assert as_csv.status_code == 409
    same = trained.post("/data", json=body, headers=headers).json()
    assert (same["accepted"], same["duplicate"]) == (0, True)
    assert trained.get("/data").json()["rows"] == before + 3
    ids = [
        trained.post("/predict", json={"features": {"feature1": x, "feature2": 0.0}}).json()[
            "prediction_id"
        ]
        for x in (0.1, 0.2)
    ]
    fb = {"idempotency-key": "fb-43"}
    first = trained.post(
        "/feedback", json={"items": [{"prediction_id": ids[0], "label": 1}]}, headers=fb
    )
    assert first.json()["accepted"] == 1
    again = trained.post(
        "/feedback", json={"items": [{"prediction_id": ids[1], "label": 1}]}, headers=fb
    )
    assert again.status_code == 409, again.text
    assert "fb-43" in again.json()["error"]


def test_model_status_reports_the_champion(trained: Api) -> None:
    """GET /model-status shows version, threshold, window and status without a key; the
    status is judged ("ok") once the champion has scored CONTINUAL_MIN_SAMPLES rows."""
    gen = trained.post("/generate", json={"n_samples": 60, "concept": 0, "seed": 3})
    assert gen.json()["scored_by"] == "1"
    r = trained.get("/model-status", headers={"authorization": ""})
    assert r.status_code == 200
    s: dict[str, Any] = r.json()
    assert s["status"] == "ok"
    assert s["model_version"] == "1"
    assert s["threshold"] == 0.8
    assert s["window"] == 200
    assert s["model_type"] == "logistic_regression"


def test_rollback_and_forward_by_promote(client_factory: Any) -> None:
    """POST /models/{v}/promote swaps the served version; the audit trail records it."""
    api = client_factory(CONTINUAL_TRAIN_WINDOW="1000")
    train(api, n=1000, seed=1)
    train(api, n=1000, concept=1, seed=2)
    assert api.get("/models").json()["champion"] == "2"
    r = api.post("/models/1/promote", json={"reason": "bad release"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "champion"
    p = api.post("/predict", json={"features": {"feature1": 1, "feature2": 1}}).json()
    assert p["model_version"] == "1"
    models = api.get("/models").json()
    assert models["champion"] == "1"
    statuses = {v["version"]: v["status"] for v in models["versions"]}
    assert statuses == {"1": "champion", "2": "retired"}
    assert [s["version"] for s in models["served"]] == ["1", "2", "1"]
    assert "bad release" in models["served"][1]["end_reason"]
    kinds = [e["kind"] for e in api.get("/events").json()]
    assert kinds[0] == "rollback"
    assert api.get("/events", params={"kind": "promoted"}).json()[0]["data"]["version"] == "2"
    assert api.post("/models/9/promote").status_code == 404
