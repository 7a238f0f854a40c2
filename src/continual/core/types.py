"""Domain types shared by every layer: plain msgspec Structs, no behaviour beyond shape."""

from __future__ import annotations

from typing import Literal

import msgspec

Label = int | str
FeatureValue = float | str
FeatureKind = Literal["numeric", "categorical"]
LabelKind = Literal["int", "str"]
ModelType = Literal["logistic_regression", "sgd", "hist_gradient_boosting", "random_forest"]
MODEL_TYPES: tuple[ModelType, ...] = (
    "logistic_regression",
    "sgd",
    "hist_gradient_boosting",
    "random_forest",
)
Decision = Literal["ok", "insufficient_data", "cooldown", "retrain"]
ModelStatus = Literal["champion", "retired", "rejected", "challenger"]
ServiceStatus = Literal["ok", "degraded", "no_model"]
TrainStrategy = Literal["window", "all", "replay"]


class Feature(msgspec.Struct, frozen=True):
    """One input column: its name and whether it is a number or a category."""

    name: str
    kind: FeatureKind


class FeatureSchema(msgspec.Struct, frozen=True):
    """The feature schema, fixed by configuration or by the first data."""

    features: tuple[Feature, ...]
    label: str
    label_kind: LabelKind

    @property
    def names(self) -> tuple[str, ...]:
        """Feature names in schema order."""
        return tuple(f.name for f in self.features)


class LabelledBatch(msgspec.Struct, frozen=True):
    """Validated labelled rows: features normalised to float or str, labels to int or str."""

    rows: list[dict[str, FeatureValue]]
    labels: list[Label]


class Prediction(msgspec.Struct, frozen=True):
    """One prediction as the API returns it."""

    prediction: Label
    probabilities: dict[str, float]
    confidence: float
    model_version: str
    prediction_id: str


class ModelRecord(msgspec.Struct, frozen=True):
    """A registered model version as recorded in our database."""

    version: str
    run_id: str
    model_type: str
    status: ModelStatus
    created_at: float
    promoted_at: float | None
    retired_at: float | None
    metrics: dict[str, float]
    params: dict[str, str]
    reason: str
    sha256: str
    since_row_id: int = 0


class ServedPeriod(msgspec.Struct, frozen=True):
    """Which version served from when to when, and why it started and ended."""

    version: str
    started_at: float
    ended_at: float | None
    reason: str
    end_reason: str | None


class Event(msgspec.Struct, frozen=True):
    """Anything the loop decided or noticed, for the audit trail and alerts."""

    id: int
    at: float
    kind: str
    message: str
    data: dict[str, object]


class DataSummary(msgspec.Struct, frozen=True):
    """What is stored: row count, labels, first and last arrival."""

    rows: int
    labels: dict[str, int]
    first_at: float | None
    last_at: float | None


class RetrainResult(msgspec.Struct, frozen=True):
    """The gate's verdict on one challenger."""

    version: str
    promoted: bool
    challenger_accuracy: float
    champion_accuracy: float | None
    run_id: str
    reason: str
    model_type: str
    train_rows: int
    holdout_rows: int
    duration_seconds: float
