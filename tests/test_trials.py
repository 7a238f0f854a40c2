"""Shadow and canary through the live server (a real ``continual serve`` on 127.0.0.1):
a better shadow is promoted on live evidence, a worse canary is ended on its own with an
alert, a caller's key sticks to one version, and bad requests are 4xx."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from continual.adapters.models import synthetic
from tests.receiver import Receiver
from tests.server import Server


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path
) -> Iterator[tuple[Server, httpx.Client, Receiver]]:
    """A server with version 1 (fitted on concept 0) and version 2 (on concept 1)."""
    data = tmp_path_factory.mktemp("trials") / "data"
    data.mkdir()
    shutil.copy(mlflow_template, data / "mlflow.db")
    hook = Receiver()
    srv = Server(
        data,
        {
            "API_KEY": "trial-key-0123456789abcdef",
            "CONTINUAL_SCHEDULER": "false",
            "CONTINUAL_MODELS": "logistic_regression",
            "CONTINUAL_MIN_SAMPLES": "50",
            "CONTINUAL_EVAL_WINDOW": "200",
            "CONTINUAL_COOLDOWN_SECONDS": "3600",
            # the gate's margin: a challenger within twice it of the champion is "close"
            "CONTINUAL_MIN_IMPROVEMENT": "0.05",
            "CONTINUAL_PREDICTION_FLUSH_SECONDS": "0.2",
            "CONTINUAL_WEBHOOK_URL": hook.url,
        },
    ).start()
    http = srv.client()
    try:
        for concept in (0, 1):
            body = {"n_samples": 600, "concept": concept, "seed": 10 + concept}
            assert http.post("/generate", json=body).status_code == 200
            verdict = http.post("/retrain").json()
            assert verdict["promoted"] is True, verdict
        yield srv, http, hook
    finally:
        http.close()
        srv.stop()
        hook.close()


def _champion(http: httpx.Client, version: str) -> None:
    r = http.post(f"/models/{version}/promote", json={"reason": "test set-up"})
    assert r.status_code == 200, r.text


def _feedback(http: httpx.Client, served: list[tuple[str, int]]) -> None:
    items = [{"prediction_id": pid, "label": y} for pid, y in served]
    assert http.post("/feedback", json={"items": items}).json()["accepted"] == len(items)


def test_a_better_shadow_is_promoted_on_live_evidence(live: Any) -> None:
    """Version 2 in shadow beside champion 1 on concept-1 traffic: callers only ever see
    version 1; feedback scores both on the same rows; the check promotes version 2 and
    the promotion's event carries the evidence."""
    _srv, http, _hook = live
    _champion(http, "1")
    started = http.post("/models/2/shadow")
    assert started.status_code == 200, started.text
    assert (started.json()["kind"], started.json()["version"]) == ("shadow", "2")
    features, labels = synthetic(120, 2, 1, 99)
    served = []
    for row, y in zip(features, labels, strict=True):
        answer = http.post("/predict", json={"features": row}).json()
        assert answer["model_version"] == "1"  # the shadow's predictions are never returned
        served.append((answer["prediction_id"], y))
    _feedback(http, served)
    view = http.get("/trial").json()
    assert view["evidence"]["rows"] == 120
    assert view["evidence"]["accuracy"] > view["evidence"]["champion_accuracy"] + 0.3
    check = http.post("/check").json()
    assert check["trial"]["action"] == "promote"
    assert check["model_version"] == "2"
    assert http.get("/model-status").json()["model_version"] == "2"
    promoted = http.get("/events", params={"kind": "promoted"}).json()[0]
    assert promoted["data"]["version"] == "2"
    assert promoted["data"]["evidence"] == view["evidence"]
    assert http.get("/trial").json()["kind"] is None  # the promotion ended the trial


def test_a_worse_canary_is_ended_on_its_own_with_an_alert(live: Any) -> None:
    """Version 1 as a canary for half the callers of champion 2 on concept-1 traffic:
    each key is answered by one version, named in the answer; feedback shows the canary
    behind; the check ends it, says so in an event and alerts."""
    _srv, http, hook = live
    _champion(http, "2")
    r = http.post("/models/1/canary", json={"percent": 50})
    assert (r.status_code, r.json()["percent"]) == (200, 50.0)
    features, labels = synthetic(240, 2, 1, 98)
    served, by_key = [], {}
    for i, (row, y) in enumerate(zip(features, labels, strict=True)):
        key = f"user-{i % 60}"
        answer = http.post(
            "/predict", json={"features": row}, headers={"x-continual-key": key}
        ).json()
        assert by_key.setdefault(key, answer["model_version"]) == answer["model_version"]
        served.append((answer["prediction_id"], y))
    assert set(by_key.values()) == {"1", "2"}
    # a batch is answered whole by the version its key falls to, through Litestar too
    canary_key = next(k for k, v in by_key.items() if v == "1")
    batch = http.post(
        "/predict",
        json={"rows": features[:3], "output": "rows"},
        headers={"x-continual-key": canary_key},
    ).json()
    assert {p["model_version"] for p in batch["predictions"]} == {"1"}
    # the Open Inference Protocol routes alike, unless the path names the version
    v2 = {
        "inputs": [
            {"name": n, "shape": [1], "datatype": "FP64", "data": [features[0][n]]}
            for n in ("feature1", "feature2")
        ]
    }
    key = {"x-continual-key": canary_key}
    assert (
        http.post("/v2/models/continual/infer", json=v2, headers=key).json()["model_version"] == "1"
    )
    pinned = http.post("/v2/models/continual/versions/2/infer", json=v2, headers=key)
    assert pinned.json()["model_version"] == "2"
    _feedback(http, served)
    before = len(hook.received)
    check = http.post("/check").json()
    assert check["trial"]["action"] == "end"
    ev = check["trial"]["evidence"]
    assert ev["rows"] >= 50
    assert ev["champion_rows"] >= 50
    assert ev["accuracy"] < ev["champion_accuracy"] - 0.3
    ended = http.get("/events", params={"kind": "canary_ended"}).json()
    assert ended[0]["data"]["version"] == "1"
    hook.wait_for(before + 1)
    assert "canary_ended" in hook.kinds()[before:]
    after = http.post(
        "/predict", json={"features": features[0]}, headers={"x-continual-key": canary_key}
    )
    assert after.json()["model_version"] == "2"
    assert http.get("/model-status").json()["model_version"] == "2"


def test_trial_requests_that_are_wrong_are_4xx_and_change_nothing(live: Any) -> None:
    """Unknown versions, the champion itself, a bad share, a bad key, nothing to end;
    and every trial route demands the key."""
    srv, http, _hook = live
    _champion(http, "2")
    assert http.post("/models/99/shadow").status_code == 404
    assert http.post("/models/2/canary").status_code == 409
    bad = http.post("/models/1/canary", json={"percent": 0})
    assert bad.status_code == 422, bad.text
    assert "percent" in bad.text
    for body, field in (({"percent": "half"}, "percent"), ({"share": 5}, "share")):
        r = http.post("/models/1/canary", json=body)
        assert r.status_code == 422, r.text
        assert field in r.text
    assert http.post("/trial/end").status_code == 404
    assert http.post("/trial/promote").status_code == 404
    long_key = http.post(
        "/predict",
        json={"features": {"feature1": 0.0, "feature2": 0.0}},
        headers={"x-continual-key": "k" * 201},
    )
    assert long_key.status_code == 422, long_key.text
    assert long_key.json()["detail"][0]["field"] == "x_continual_key"
    assert http.get("/trial").json()["kind"] is None
    for method, path in (
        ("POST", "/models/1/shadow"),
        ("POST", "/models/1/canary"),
        ("GET", "/trial"),
        ("POST", "/trial/end"),
        ("POST", "/trial/promote"),
    ):
        assert httpx.request(method, srv.url + path).status_code == 401
    # a shadow ended by hand: one call
    assert http.post("/models/1/shadow").status_code == 200
    ended = http.post("/trial/end").json()
    assert ended["kind"] is None
    last = http.get("/events", params={"kind": "trial_ended"}).json()[0]
    assert (last["data"]["reason"], last["data"]["version"]) == ("ended by hand", "1")


def test_a_challenger_close_to_the_gate_goes_into_shadow_by_itself(live: Any) -> None:
    """A retrain on the champion's own rows finds a challenger about as good: the gate
    rejects it, and the policy puts it in shadow to be judged on live traffic."""
    _srv, http, _hook = live
    _champion(http, "2")  # any trial ends with a promotion
    # the very rows version 2 was fitted on (same concept and seed, same rows)
    again = {"n_samples": 600, "concept": 1, "seed": 11}
    assert http.post("/generate", json=again).status_code == 200
    verdict = http.post("/retrain").json()
    assert verdict["promoted"] is False, verdict
    assert abs(verdict["challenger_accuracy"] - verdict["champion_accuracy"]) < 0.1
    view = http.get("/trial").json()
    assert (view["kind"], view["version"], view["champion_version"]) == (
        "shadow",
        verdict["version"],
        "2",
    )
    started = http.get("/events", params={"kind": "shadow_started"}).json()[0]
    assert started["data"] == {"version": verdict["version"], "champion": "2", "percent": 0.0}
    assert http.post("/trial/end").json()["kind"] is None
