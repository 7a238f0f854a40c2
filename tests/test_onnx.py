"""Every model family serves through a compiled path whose probabilities are sklearn's."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest

from continual.adapters.models import CompiledModel, fit, frame
from continual.adapters.onnx import Session, export
from continual.core.types import MODEL_TYPES, Feature, FeatureSchema, ModelType
from tests.conftest import close, train
from tests.test_restart import closed_port

SCHEMA = FeatureSchema(
    (
        Feature("a", "numeric"),
        Feature("b", "numeric"),
        Feature("c", "numeric"),
        Feature("colour", "categorical"),
        Feature("size", "categorical"),
    ),
    "target",
    "int",
)
COLOURS = ["red", "green", "blue", "teal"]
SIZES = ["s", "m", "l"]


def dataset(n: int, classes: int, seed: int) -> tuple[list[dict[str, Any]], list[Any]]:
    """Rows with numbers rounded as JSON sends them and two categorical columns."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(n, 3)), 6)
    colour = rng.integers(0, len(COLOURS), n)
    size = rng.integers(0, len(SIZES), n)
    score = x[:, 0] + x[:, 1] * x[:, 2] + (colour == 1) - 0.5 * (size == 2)
    labels: list[Any] = (score > 0).astype(int).tolist()
    if classes == 3:
        labels = [["low", "mid", "high"][int(s > 0) + int(s > 1)] for s in score]
    rows = [
        {"a": r[0], "b": r[1], "c": r[2], "colour": COLOURS[k], "size": SIZES[m]}
        for r, k, m in zip(x.tolist(), colour.tolist(), size.tolist(), strict=True)
    ]
    return rows, labels


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_compiled_probabilities_match_sklearn(model_type: ModelType, classes: int) -> None:
    """The served path and the ONNX model agree with sklearn's predict_proba to 1e-6, and
    a single row scored alone agrees with it in a batch."""
    schema = SCHEMA if classes == 2 else FeatureSchema(SCHEMA.features, "target", "str")
    rows, labels = dataset(1500, classes, seed=classes)
    pipeline = fit(model_type, schema, rows, labels, seed=0)
    fresh, _ = dataset(2000, classes, seed=10 + classes)
    unseen = [{**r, "colour": "purple", "size": "xl"} for r in fresh[:200]]
    # the training rows themselves lie exactly on tree thresholds' neighbours; float32
    # rounding of inputs is where a single-precision tree goes the wrong way
    rounded = [{**r, "a": float(np.float32(r["a"]))} for r in fresh[:500]]
    probe = rows + fresh + unseen + rounded
    want = pipeline.predict_proba(frame(probe, schema))
    blob = export(pipeline.named_steps["model"], CompiledModel.of(pipeline, schema).width)
    served = CompiledModel.of(pipeline, schema, blob, serving=True)
    assert served.runtime == ("numpy" if model_type in ("logistic_regression", "sgd") else "onnx")
    one_row = {"logistic_regression": "python", "sgd": "python", "hist_gradient_boosting": "numba"}
    assert served.single_row_runtime == one_row.get(model_type, "onnx")
    got = served.predict_rows(probe)
    assert got.shape == want.shape == (len(probe), classes)
    assert np.abs(got - want).max() <= 1e-6
    # the ONNX bytes MLflow carries for other servers, whatever serves here
    onnx = Session(blob).predict_proba(served.encode(probe))
    assert np.abs(onnx - want).max() <= 1e-6
    assert served.labels_of(got) == list(pipeline.predict(frame(probe, schema)))
    # validated rows as the request path holds them (values in schema order), and one row
    # at a time as a single-row predict scores them (plain floats for a linear model)
    values = [tuple(r[n] for n in schema.names) for r in probe]
    assert np.abs(served.predict_values(values) - got).max() <= 1e-12
    one = np.array([served.predict_one(v) for v in values[::5]])
    # a linear model's plain floats, and a boosted ensemble's compiled walk, are
    # scikit-learn's own arithmetic; a forest's single row goes through ONNX, as a batch
    exact = model_type in ("logistic_regression", "sgd", "hist_gradient_boosting")
    assert np.abs(one - (want if exact else got)[::5]).max() <= 1e-12


def served(client: Any, rows: list[dict[str, float]]) -> list[dict[str, float]]:
    """The probabilities the server answers for ``rows``."""
    body = client.post("/predict", json={"rows": rows}).json()
    return [p["probabilities"] for p in body["predictions"]]


def test_tree_champion_serves_through_onnx_after_retrain_and_restart(
    settings_factory: Any, client_factory: Any, tmp_path: Any
) -> None:
    """A HistGradientBoosting champion serves through ONNX: after its retrain, after a
    restart from the local copy, from MLflow when that copy is gone, and through sklearn
    (same answers) when neither can be had."""
    data = tmp_path / "d"
    env = {"CONTINUAL_MODEL": "hist_gradient_boosting"}
    first = client_factory(settings_factory(data_dir=data, **env))
    verdict = train(first, n=1000)
    assert verdict["promoted"]
    assert verdict["model_type"] == "hist_gradient_boosting"
    status = first.get("/model-status").json()
    assert status["runtime"] == "onnx"
    assert status["single_row_runtime"] == "numba"
    version = status["model_version"]
    local = data / "models" / f"{version}.onnx"
    assert local.stat().st_size > 0
    rows = [{"feature1": x / 7, "feature2": (x % 5) - 2.0} for x in range(-30, 30)]
    before = served(first, rows)
    pipeline = pickle.loads((data / "models" / f"{version}.pkl").read_bytes())
    two = FeatureSchema(
        (Feature("feature1", "numeric"), Feature("feature2", "numeric")), "target", "int"
    )
    want = pipeline.predict_proba(frame(rows, two))
    got = np.asarray([[p["0"], p["1"]] for p in before])
    assert np.abs(got - want).max() <= 1e-6
    # a single row is answered by the trees as generated Python: scikit-learn's own sums
    ones = [first.post("/predict", json={"features": r}).json() for r in rows[:12]]
    alone = np.asarray([[p["probabilities"]["0"], p["probabilities"]["1"]] for p in ones])
    assert np.abs(alone - want[:12]).max() <= 1e-12
    close(first)

    second = client_factory(settings_factory(data_dir=data, **env))
    assert second.get("/model-status").json()["runtime"] == "onnx"
    assert served(second, rows) == before
    close(second)

    good = local.read_bytes()
    local.unlink()
    third = client_factory(settings_factory(data_dir=data, **env))
    assert third.get("/model-status").json()["runtime"] == "onnx"
    assert local.read_bytes() == good  # fetched from MLflow, verified, cached again
    assert served(third, rows) == before
    close(third)

    local.unlink()
    offline = settings_factory(
        data_dir=data,
        MLFLOW_TRACKING_URI=f"http://127.0.0.1:{closed_port()}",
        CONTINUAL_MLFLOW_TIMEOUT_SECONDS="1",
        CONTINUAL_MLFLOW_MAX_RETRIES="0",
        **env,
    )
    fourth = client_factory(offline)
    assert fourth.get("/model-status").json()["runtime"] == "sklearn"
    fallback = np.asarray([[p["0"], p["1"]] for p in served(fourth, rows)])
    assert np.abs(fallback - got).max() <= 1e-6
