"""The challenger pool and the capacity state, through the real API, worker and MLflow."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from continual.adapters.models import synthetic
from continual.adapters.tracking import MlflowRegistry
from tests.conftest import Api
from tests.receiver import Receiver


def rule_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """A rule-like concept over two numbers and a category: no line can separate it."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.uniform(-1, 1), rng.uniform(-1, 1)
        colour = rng.choice(["red", "green", "blue"])
        rows.append(
            {
                "feature1": round(a, 4),
                "feature2": round(b, 4),
                "colour": colour,
                "target": int((a > 0.2) != (b < -0.1)) ^ int(colour == "red"),
            }
        )
    return rows


def mlflow_runs(registry: MlflowRegistry) -> list[dict[str, str]]:
    """Every run of the experiment as {run id, parent, name, role, winner} (in the worker)."""
    from pathlib import Path

    from continual.adapters import tracking as adapter

    tracking = registry.config
    adapter.configure(tracking.tracking_uri, Path(tracking.data_dir), 10, 0)
    import mlflow

    runs = mlflow.search_runs(experiment_names=[tracking.experiment], output_format="list")
    return [
        {
            "id": r.info.run_id,
            "parent": r.data.tags.get("mlflow.parentRunId", ""),
            "name": r.info.run_name,
            "role": r.data.tags.get("continual.role", ""),
            "winner": r.data.tags.get("continual.winner", ""),
        }
        for r in runs
    ]


def test_rule_like_concept_promotes_the_tree_family(client_factory: Any) -> None:
    """On a concept no line separates, the default pool promotes gradient boosting over
    logistic regression; the verdict, /models and MLflow (a run per candidate, under the
    retrain's) say which family won and what each scored."""
    api: Api = client_factory()
    assert api.post("/data", json={"rows": rule_rows(3000, 1)}).status_code == 200
    verdict = api.post("/retrain").json()
    assert verdict["promoted"] is True, verdict
    assert verdict["model_type"] == "hist_gradient_boosting"
    scores = {c["model_type"]: c["accuracy"] for c in verdict["candidates"]}
    assert set(scores) == {"logistic_regression", "hist_gradient_boosting"}
    assert scores["hist_gradient_boosting"] > 0.9 > 0.75 > scores["logistic_regression"]
    assert verdict["challenger_accuracy"] == scores["hist_gradient_boosting"]
    assert "hist_gradient_boosting (best of 2 families)" in verdict["reason"]

    (version,) = api.get("/models").json()["versions"]
    assert version["model_type"] == "hist_gradient_boosting"
    assert version["params"]["candidates"].startswith("logistic_regression:0.")
    assert version["metrics"]["logistic_regression_accuracy"] == scores["logistic_regression"]

    test = rule_rows(400, 2)
    preds = api.post(
        "/predict", json={"rows": [{k: v for k, v in r.items() if k != "target"} for r in test]}
    ).json()["predictions"]
    hits = sum(p["prediction"] == r["target"] for p, r in zip(preds, test, strict=True))
    assert hits / len(test) > 0.9

    services = api.app_.services
    registry = services.registry.model_registry
    assert isinstance(registry, MlflowRegistry)
    runs = asyncio.run(services.worker.run(120, mlflow_runs, registry))
    (parent,) = [r for r in runs if r["role"] == "retrain"]
    children = sorted((r["name"], r["winner"]) for r in runs if r["parent"] == parent["id"])
    assert children == [("hist_gradient_boosting", "true"), ("logistic_regression", "false")]
    winner = next(r for r in runs if r["winner"] == "true")
    assert version["run_id"] == winner["id"]


def noisy(n: int, seed: int, concept: int = 0) -> tuple[list[dict[str, Any]], list[int]]:
    """A linear concept with a quarter of its labels flipped: about 0.75 is the best any
    model can reach, out of reach of a 0.9 threshold."""
    rows, labels = synthetic(n, 2, concept, seed)
    rng = random.Random(seed)
    return rows, [1 - y if rng.random() < 0.25 else y for y in labels]


def predict_then_label(api: Api, rows: list[dict[str, Any]], labels: list[int]) -> None:
    """Predict the rows, then send their true labels by prediction id."""
    preds = api.post("/predict", json={"rows": rows}).json()["predictions"]
    items = [
        {"prediction_id": p["prediction_id"], "label": y}
        for p, y in zip(preds, labels, strict=True)
    ]
    assert api.post("/feedback", json={"items": items}).json()["accepted"] == len(rows)


def serve(api: Api, n: int, seed: int, concept: int = 0) -> None:
    """Predict ``n`` noisy rows, then send their true labels."""
    predict_then_label(api, *noisy(n, seed, concept))


def test_out_of_reach_threshold_gives_one_capacity_alert_and_no_retrain_storm(
    client_factory: Any,
) -> None:
    """Threshold 0.9 on data where 0.75 is the best reachable: one retrain finds nothing
    better, one event and one alert say so, later checks retrain no more while the status
    stays degraded; a change in the data (the concept mirrors) starts a retrain again,
    and its promotion clears the state."""
    hook = Receiver()
    try:
        api: Api = client_factory(
            PERFORMANCE_THRESHOLD="0.9",
            CONTINUAL_MIN_SAMPLES="100",
            CONTINUAL_MIN_IMPROVEMENT="0.05",
            CONTINUAL_WEBHOOK_URL=hook.url,
        )
        rows, labels = noisy(2000, 1)
        batch = [{**r, "target": y} for r, y in zip(rows, labels, strict=True)]
        assert api.post("/data", json={"rows": batch}).status_code == 200
        assert api.post("/retrain").json()["promoted"] is True

        serve(api, 300, 11)
        first = api.post("/check").json()
        assert first["decision"] == "retrain", first
        assert first["retrain"]["promoted"] is False, first["retrain"]
        capacity = first["capacity"]
        assert capacity["version"] == "1"
        assert capacity["families"] == ["logistic_regression", "hist_gradient_boosting"]
        assert 0.6 < capacity["level"] < 0.9
        for seed in (12, 13, 14):
            serve(api, 300, seed)
            later = api.post("/check").json()
            assert later["decision"] == "ok", later
            assert later["reason"].startswith("at capacity: live accuracy"), later["reason"]
            assert later["retrain"] is None
        status = api.get("/model-status").json()
        assert status["status"] == "degraded"
        assert status["capacity"]["level"] == capacity["level"]

        (event,) = api.get("/events", params={"kind": "at_capacity"}).json()
        assert event["message"] == (
            f"threshold 0.90 not reachable on recent data: best of 2 families "
            f"{capacity['best']:.2f}"
        )
        started = api.get("/events", params={"kind": "retrain_started"}).json()
        assert len(started) == 2  # the first model and the one that found nothing better
        hook.wait_for(5)
        assert hook.kinds().count("at_capacity") == 1

        serve(api, 300, 15, concept=1)  # the concept mirrors: the champion falls far
        changed = api.post("/check").json()
        assert changed["decision"] == "retrain", changed
        assert changed["retrain"]["promoted"] is True
        assert changed["capacity"] is None
        assert api.get("/model-status").json()["capacity"] is None
    finally:
        hook.close()


def test_a_stable_stream_gets_its_history_and_a_drifted_one_the_fresh_rows(
    client_factory: Any,
) -> None:
    """With no change located, the window search looks past CONTINUAL_TRAIN_WINDOW into
    the history and serves a model of more rows; after a located change it looks no
    further back than the change."""
    api: Api = client_factory(
        CONTINUAL_TRAIN_WINDOW="500", CONTINUAL_HISTORY_ROWS="4000", CONTINUAL_MIN_SAMPLES="100"
    )
    rows, labels = synthetic(3000, 2, 0, 3)
    batch = [{**r, "target": y} for r, y in zip(rows, labels, strict=True)]
    assert api.post("/data", json={"rows": batch}).status_code == 200
    verdict = api.post("/retrain").json()
    assert verdict["promoted"] is True
    for candidate in verdict["candidates"]:
        sizes = [int(w.split(":")[0]) for w in candidate["windows_tried"].split(",")]
        assert max(sizes) > 2000, candidate  # all of the history
        assert 1000 in sizes, candidate  # and the doublings of the base window
    assert verdict["train_rows"] > 2000  # more of the same concept won

    for concept, seed in ((0, 4), (1, 5)):  # served well, then the concept mirrors
        rows, labels = synthetic(300, 2, concept, seed)
        predict_then_label(api, rows, labels)
    drifted = api.post("/check").json()
    assert drifted["decision"] == "retrain", drifted
    retrain = drifted["retrain"]
    assert retrain["promoted"] is True, retrain
    for candidate in retrain["candidates"]:
        sizes = [int(w.split(":")[0]) for w in candidate["windows_tried"].split(",")]
        assert max(sizes) <= 500, candidate  # nothing from before the change beyond the window
    assert retrain["train_rows"] <= 300


def test_a_refresh_that_finds_nothing_better_ends_the_refreshes(client_factory: Any) -> None:
    """A champion is refitted once its concept's rows double; when that challenger is
    rejected (more rows did not help) the champion is not refitted at every doubling."""
    api: Api = client_factory(CONTINUAL_MODELS="logistic_regression", CONTINUAL_MIN_SAMPLES="100")
    every, labelled = synthetic(5000, 2, 0, 6)  # one draw: one concept, one class layout
    first = [{**r, "target": y} for r, y in zip(every[:1000], labelled[:1000], strict=True)]
    api.post("/data", json={"rows": first})
    assert api.post("/retrain").json()["promoted"] is True
    decisions = []
    for start in range(1000, 5000, 500):  # 8 x 500 rows of the same concept
        rows, labels = every[start : start + 500], labelled[start : start + 500]
        predict_then_label(api, rows, labels)
        check = api.post("/check").json()
        decisions.append((check["decision"], (check["retrain"] or {}).get("promoted")))
    # the refresh at 2,000 rows, then nothing
    assert decisions == [("ok", None), ("retrain", False)] + [("ok", None)] * 6
