"""The loop through the real API: measure, decide, retrain, gate, promote, alert."""

from __future__ import annotations

import time
from typing import Any

from continual.adapters.models import synthetic
from tests.conftest import Api, close, train
from tests.receiver import Receiver, Silent


def stream(api: Api, n: int, concept: int, seed: int) -> float:
    """Predict ``n`` rows of a concept, then send their true labels; return the hit rate."""
    rows, labels = synthetic(n, 2, concept, seed)
    preds = api.post("/predict", json={"rows": rows}).json()["predictions"]
    items = [
        {"prediction_id": p["prediction_id"], "label": y}
        for p, y in zip(preds, labels, strict=True)
    ]
    assert api.post("/feedback", json={"items": items}).json()["accepted"] == n
    return sum(p["prediction"] == y for p, y in zip(preds, labels, strict=True)) / n


def test_drifting_stream_is_detected_retrained_and_recovered(client_factory: Any) -> None:
    """Concept 0 -> 1: the check degrades, retrains once, promotes, and accuracy recovers."""
    api = client_factory(CONTINUAL_MIN_SAMPLES="100")
    train(api, n=2000, concept=0, seed=1)
    assert stream(api, 300, 0, 11) > 0.9
    before = api.post("/check").json()
    assert (before["decision"], before["model_version"]) == ("ok", "1")
    assert before["accuracy"] > 0.9
    assert before["samples"] == 200  # the evaluation window
    assert before["retrain"] is None

    assert stream(api, 300, 1, 12) < 0.2
    drifted = api.post("/check").json()
    assert drifted["decision"] == "retrain", drifted
    assert drifted["accuracy"] < 0.8
    verdict = drifted["retrain"]
    assert verdict["promoted"] is True, verdict
    assert verdict["version"] == "2"
    assert verdict["challenger_accuracy"] > 0.9 > 0.2 > verdict["champion_accuracy"]

    assert stream(api, 300, 1, 13) > 0.9
    after = api.post("/check").json()
    assert after["model_version"] == "2"
    assert after["accuracy"] > 0.9
    # version 2 learnt from the 300 rows after the change; now that there are twice as
    # many, it is refitted on them (a refresh, not a drift: it was not degraded)
    assert after["decision"] == "retrain", after
    assert "rows of the current concept" in after["reason"]
    refreshed = after["retrain"]["version"]
    assert stream(api, 100, 1, 14) > 0.9
    settled = api.post("/check").json()
    assert settled["decision"] == "ok", settled

    kinds = [e["kind"] for e in reversed(api.get("/events").json())]
    story = [
        k
        for k in kinds
        if k in {"degraded", "retrain_started", "promoted", "recovered", "rejected"}
    ]
    assert story == [
        "retrain_started",
        "promoted",
        "degraded",
        "retrain_started",
        "promoted",
        "recovered",
        "retrain_started",
        "promoted" if after["retrain"]["promoted"] else "rejected",
    ]
    models = api.get("/models").json()
    statuses = [v["status"] for v in models["versions"]]
    if after["retrain"]["promoted"]:
        assert statuses == ["champion", "retired", "retired"]
    else:
        assert statuses == ["rejected", "champion", "retired"]
    assert all(len(v["run_id"]) == 32 for v in models["versions"])
    status = api.get("/model-status").json()
    champion = refreshed if after["retrain"]["promoted"] else "2"
    assert (status["status"], status["model_version"]) == ("ok", champion)


def test_late_labels_judge_a_new_champion_at_once_and_recover(client_factory: Any) -> None:
    """Labels arrive late: the champion switched after a drift is judged on the late labels
    of its predecessor's predictions (rows it never saw) instead of waiting for its own."""
    api = client_factory(CONTINUAL_MIN_SAMPLES="100")
    train(api, n=2000, concept=0, seed=1)
    rows, labels = synthetic(600, 2, 1, 21)  # the concept switches
    preds = api.post("/predict", json={"rows": rows}).json()["predictions"]
    assert sum(p["prediction"] == y for p, y in zip(preds, labels, strict=True)) < 120
    items = [
        {"prediction_id": p["prediction_id"], "label": y}
        for p, y in zip(preds, labels, strict=True)
    ]
    api.post("/feedback", json={"items": items[:300]})  # the first labels come in
    drifted = api.post("/check").json()
    assert drifted["decision"] == "retrain", drifted
    assert drifted["retrain"]["promoted"] is True
    api.post("/feedback", json={"items": items[300:]})  # labels of version 1's predictions
    after = api.post("/check").json()
    assert after["model_version"] == "2"
    assert after["samples"] == 200  # judged at once, though it has predicted nothing yet
    assert after["accuracy"] > 0.9
    assert after["detector_fired"] is False


def test_insufficient_data_and_first_model(client_factory: Any) -> None:
    """No model and too few rows: insufficient_data; enough rows: the check trains the first."""
    api = client_factory(CONTINUAL_MIN_SAMPLES="100")
    api.post("/generate", json={"n_samples": 50, "seed": 1})
    first = api.post("/check").json()
    assert first["decision"] == "insufficient_data"
    assert "50 labelled rows < 100" in first["reason"]
    api.post("/generate", json={"n_samples": 500, "seed": 2})
    second = api.post("/check").json()
    assert second["decision"] == "retrain"
    assert second["retrain"]["promoted"] is True
    third = api.post("/check").json()
    assert third["decision"] == "insufficient_data"  # no rows scored by the new champion yet


def test_cooldown_holds_a_due_retrain(client_factory: Any) -> None:
    """A retrain less than CONTINUAL_COOLDOWN_SECONDS ago turns `retrain` into `cooldown`."""
    api = client_factory(CONTINUAL_MIN_SAMPLES="100", CONTINUAL_COOLDOWN_SECONDS="3600")
    train(api, n=1000)
    stream(api, 200, 1, 5)
    r = api.post("/check").json()
    assert r["decision"] == "cooldown"
    assert "too recent" in r["reason"]
    assert r["retrain"] is None


XOR = [
    {
        "feature1": float(a) + n / 50,
        "feature2": float(b) - n / 60,
        "target": int((a > 0) != (b > 0)),
    }
    for n in range(10)
    for a in (-1, 1)
    for b in (-1, 1)
] * 40


def test_worse_challenger_is_rejected_and_never_served(
    settings_factory: Any, client_factory: Any, tmp_path: Any
) -> None:
    """A linear challenger cannot learn XOR: rejected with both scores; the champion serves on."""
    boosted = client_factory(
        settings_factory(data_dir=tmp_path / "d", CONTINUAL_MODEL="hist_gradient_boosting")
    )
    assert boosted.post("/data", json={"rows": XOR}).status_code == 200
    assert boosted.post("/retrain").json()["promoted"] is True
    close(boosted)
    linear = client_factory(
        settings_factory(data_dir=tmp_path / "d", CONTINUAL_MODEL="logistic_regression")
    )
    verdict = linear.post("/retrain").json()
    assert verdict["promoted"] is False, verdict
    assert verdict["champion_accuracy"] > 0.9
    assert verdict["challenger_accuracy"] < 0.8
    p = linear.post("/predict", json={"features": {"feature1": 1.0, "feature2": -1.0}}).json()
    assert (p["model_version"], p["prediction"]) == ("1", 1)
    event = linear.get("/events", params={"kind": "rejected"}).json()[0]
    assert event["data"]["version"] == "2"
    assert event["data"]["challenger_accuracy"] < event["data"]["champion_accuracy"]
    statuses = {v["version"]: v["status"] for v in linear.get("/models").json()["versions"]}
    assert statuses == {"1": "champion", "2": "rejected"}


def test_one_class_window_is_not_trained_on(api: Api) -> None:
    """A window with a single class is refused with a reason, recorded as an event."""
    rows = [{"feature1": float(i), "feature2": 1.0, "target": 1} for i in range(300)]
    api.post("/data", json={"rows": rows})
    r = api.post("/retrain")
    assert r.status_code == 422
    assert "one class" in r.json()["error"]
    event = api.get("/events", params={"kind": "retrain_failed"}).json()[0]
    assert "one class" in event["message"]
    assert api.get("/models").json()["versions"] == []


def test_retrain_is_409_while_one_runs(trained: Api) -> None:
    """A second retrain while one runs is refused with 409 at once; the first completes."""
    import threading

    results: list[int] = []
    first = threading.Thread(target=lambda: results.append(trained.post("/retrain").status_code))
    first.start()
    deadline = time.monotonic() + 10
    while not trained.app_.services.retrainer.running and time.monotonic() < deadline:
        time.sleep(0.005)
    started = time.monotonic()
    second = trained.post("/retrain")
    assert second.status_code == 409, second.text
    assert time.monotonic() - started < 1.0
    assert second.json()["error"] == "a retrain is already running"
    first.join(60)
    assert results == [200]


def test_alerts_reach_every_channel(client_factory: Any) -> None:
    """Discord embeds, Slack text and the generic webhook get the retrain and promotion."""
    discord, slack, hook = Receiver(), Receiver(), Receiver()
    try:
        api = client_factory(
            DISCORD_WEBHOOK_URL=discord.url,
            SLACK_WEBHOOK_URL=slack.url,
            CONTINUAL_WEBHOOK_URL=hook.url,
        )
        train(api, n=600)
        for r in (discord, slack, hook):
            r.wait_for(2)
        assert hook.kinds() == ["retrain_started", "promoted"]
        assert hook.received[1]["data"]["version"] == "1"
        embed = discord.received[1]["embeds"][0]
        assert embed["title"] == "New champion promoted"
        assert "version 1 promoted" in embed["description"]
        assert slack.received[1]["text"].startswith("New champion promoted: version 1 promoted")
        checks = api.post("/check").json()
        time.sleep(0.3)
        assert checks["decision"] in {"insufficient_data", "ok"}
        assert len(hook.received) == 2  # checks alone do not alert
    finally:
        for r in (discord, slack, hook):
            r.close()


def test_broken_receivers_delay_nothing_and_are_recorded(client_factory: Any) -> None:
    """A hanging or failing receiver does not slow a retrain; failures become events."""
    hanging, failing = Receiver("hang"), Receiver("500")
    try:
        api = client_factory(
            DISCORD_WEBHOOK_URL=hanging.url,
            CONTINUAL_WEBHOOK_URL=failing.url,
            CONTINUAL_ALERT_TIMEOUT_SECONDS="1",
        )
        api.post("/generate", json={"n_samples": 600, "seed": 1})
        started = time.monotonic()
        assert api.post("/retrain").json()["promoted"] is True
        assert time.monotonic() - started < 15
        deadline = time.monotonic() + 30
        failed: list[dict[str, Any]] = []
        while time.monotonic() < deadline and len(failed) < 4:
            failed = api.get("/events", params={"kind": "alert_failed"}).json()
            time.sleep(0.2)
        channels = sorted({e["data"]["channel"] for e in failed})
        assert channels == ["discord", "webhook"]
        assert all(e["data"]["attempts"] == 3 for e in failed)
        text = str(failed)
        assert "secret-token-123" not in text  # webhook URLs are secrets: only the host is shown
        assert "127.0.0.1" in text
    finally:
        hanging.close()
        failing.close()


def test_mlflow_down_fails_the_retrain_in_bounded_time(
    settings_factory: Any, client_factory: Any, tmp_path: Any
) -> None:
    """MLflow hanging: a failure event and an alert, champion unchanged, predictions unaffected."""
    first = client_factory(settings_factory(data_dir=tmp_path / "d"))
    train(first, n=600)
    close(first)
    silent, hook = Silent(), Receiver()
    try:
        api = client_factory(
            settings_factory(
                data_dir=tmp_path / "d",
                MLFLOW_TRACKING_URI=silent.url,
                CONTINUAL_WEBHOOK_URL=hook.url,
                CONTINUAL_MLFLOW_TIMEOUT_SECONDS="2",
                CONTINUAL_MLFLOW_MAX_RETRIES="0",
            )
        )
        started = time.monotonic()
        r = api.post("/retrain")
        elapsed = time.monotonic() - started
        assert r.status_code == 503, r.text
        assert "MLflow" in r.json()["error"]
        assert elapsed < 60
        p = api.post("/predict", json={"features": {"feature1": 1.0, "feature2": 1.0}})
        assert (p.status_code, p.json()["model_version"]) == (200, "1")
        assert api.get("/models").json()["champion"] == "1"
        failed = api.get("/events", params={"kind": "retrain_failed"}).json()
        assert failed
        assert "MLflow" in failed[0]["message"]
        hook.wait_for(2)
        assert hook.kinds() == ["retrain_started", "retrain_failed"]
    finally:
        silent.close()
        hook.close()
