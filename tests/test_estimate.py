"""Estimated accuracy before the labels come, and data quality at the door, through the
real app: real SQLite, a real MLflow store, the training worker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from continual.adapters.models import synthetic
from continual.core.policy import CheckInputs, decide
from tests.conftest import Api


def _predict(api: Api, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    r = api.post("/predict", json={"rows": rows})
    assert r.status_code == 200, r.text
    return list(r.json()["predictions"])


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.fixture(scope="module")
def acting(client_factory: Any) -> Iterator[Api]:
    """A champion of concept 0, a check that may act on the estimate, and a long cooldown
    (a retrain the check asks for answers ``cooldown`` with its reason, and runs none)."""
    api = client_factory(
        CONTINUAL_ACT_ON_ESTIMATE="true",
        CONTINUAL_COOLDOWN_SECONDS="3600",
        CONTINUAL_MODELS="logistic_regression",
    )
    assert (
        api.post("/generate", json={"n_samples": 800, "concept": 0, "seed": 1}).status_code == 200
    )
    assert api.post("/retrain").json()["promoted"] is True
    return api


def test_estimate_stands_beside_realized_accuracy_and_the_check_acts_on_it(acting: Api) -> None:
    """Predictions without labels get an estimate (status, check, metrics, with its rows);
    inputs moved onto the boundary lower it and the check asks for a retrain; labels
    that come later give realized accuracy, which wins."""
    api = acting
    features, labels = synthetic(100, 2, 0, 77)
    served = _predict(api, features)
    status = api.get("/model-status").json()
    assert status["samples"] == 0
    assert status["calibration_rows"] > 0
    assert status["estimated_samples"] == 100
    assert status["estimated_accuracy"] > 0.85
    metrics = api.get("/metrics").text
    assert _metric(metrics, "continual_estimated_accuracy") == status["estimated_accuracy"]
    assert _metric(metrics, "continual_estimated_samples") == 100

    # covariate shift into the gap between the classes (about the origin): no labels yet
    near = np.random.default_rng(5).normal(0, 0.1, (300, 2))
    _predict(api, [{"feature1": float(a), "feature2": float(b)} for a, b in near])
    check = api.post("/check").json()
    assert check["estimated_samples"] == 200  # the newest evaluation window
    assert check["estimated_accuracy"] < 0.7
    assert check["samples"] == 0
    assert check["decision"] == "cooldown"
    assert check["reason"].startswith(f"estimated accuracy {check['estimated_accuracy']:.3f} <")

    # the labels of the first 100 come: realized accuracy has enough rows, and wins
    items = [
        {"prediction_id": p["prediction_id"], "label": y}
        for p, y in zip(served, labels, strict=False)
    ]
    assert api.post("/feedback", json={"items": items}).json()["accepted"] == 100
    check = api.post("/check").json()
    assert (check["decision"], check["samples"]) == ("ok", 100)
    assert check["accuracy"] > 0.85
    assert check["estimated_accuracy"] < 0.7  # still shown beside it
    status = api.get("/model-status").json()
    assert (status["status"], status["accuracy"]) == ("ok", check["accuracy"])


def test_the_check_ignores_the_estimate_unless_asked() -> None:
    """Off by default: an estimate below the threshold, without labels, starts nothing."""
    base = {
        "now": 1000.0,
        "has_champion": True,
        "labelled_rows": 1000,
        "samples": 10,
        "accuracy": 0.9,
        "threshold": 0.8,
        "min_samples": 50,
        "detector_fired": False,
        "last_retrain_at": None,
        "cooldown_seconds": 0.0,
        "estimated_accuracy": 0.6,
        "estimated_samples": 200,
    }
    assert decide(CheckInputs(**base)).decision == "insufficient_data"
    acted = decide(CheckInputs(**base, act_on_estimate=True))
    assert (acted.decision, acted.trigger) == ("retrain", "estimate")
    few = decide(CheckInputs(**{**base, "estimated_samples": 49}, act_on_estimate=True))
    assert few.decision == "insufficient_data"
    realized = decide(CheckInputs(**{**base, "samples": 50}, act_on_estimate=True))
    assert realized.decision == "ok"  # realized accuracy with enough rows wins


def test_quality_is_counted_in_check_and_metrics_and_never_rejects(client_factory: Any) -> None:
    """Out-of-range values and unseen categories are stored and served, counted per
    feature in /check and /metrics, and a change alerts once."""
    api = client_factory(CONTINUAL_MODELS="logistic_regression", CONTINUAL_COOLDOWN_SECONDS="3600")
    rng = np.random.default_rng(3)
    rows = [
        {"size": float(x), "color": c, "target": int(x > 0) if c == "red" else int(x > 1)}
        for x, c in zip(rng.normal(0, 1, 400), rng.choice(["red", "blue"], 400), strict=True)
    ]
    assert api.post("/data", json={"rows": rows}).json()["accepted"] == 400
    assert api.post("/retrain").json()["promoted"] is True
    quiet = api.post("/check").json()["quality"]
    assert quiet["rows"] == 0  # the training rows came before the champion: not counted

    # 40 good rows, 5 far out of range (size 1e6), 5 of an unseen color: all stored
    odd = (
        [{"size": 0.5, "color": "red", "target": 1}] * 40
        + [{"size": 1e6, "color": "blue", "target": 1}] * 5
        + [{"size": 0.1, "color": "green", "target": 0}] * 5
    )
    stored = api.post("/data", json={"rows": odd}).json()
    assert (stored["accepted"], stored["scored_by"]) == (50, "1")
    served = _predict(api, [{"size": -1e6, "color": "green"}] * 10)
    assert len(served) == 10  # and served
    check = api.post("/check").json()
    assert check["quality"]["rows"] == 60
    assert check["quality"]["features"] == [
        {"feature": "size", "out_of_range": 15, "unseen": 0, "share": 0.25},
        {"feature": "color", "out_of_range": 0, "unseen": 15, "share": 0.25},
    ]
    assert check["quality"]["flagged"] == ["size", "color"]
    events = api.get("/events", params={"kind": "data_quality"}).json()
    assert len(events) == 1
    assert events[0]["data"]["flagged"] == ["size", "color"]
    metrics = api.get("/metrics").text
    assert 'continual_quality_out_of_range_total{feature="size"} 15.0' in metrics
    assert 'continual_quality_unseen_total{feature="color"} 15.0' in metrics
    assert _metric(metrics, "continual_quality_rows_total") == 60
    # the same flagged features at the next check: no second alert
    api.post("/data", json={"rows": odd})
    assert api.post("/check").json()["quality"]["flagged"] == ["size", "color"]
    assert len(api.get("/events", params={"kind": "data_quality"}).json()) == 1
