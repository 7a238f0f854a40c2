"""Domain types shared by every layer: plain msgspec Structs, no behaviour beyond shape."""

from __future__ import annotations

from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt

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
# collecting: a champion serves, but it has not yet scored the rows live accuracy is
# judged from (CONTINUAL_MIN_SAMPLES): neither "ok" nor "degraded" is known yet
ServiceStatus = Literal["ok", "degraded", "collecting", "no_model"]
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

    @property
    def all_numeric(self) -> bool:
        """Whether every feature is a number (the matrix is then the rows' values)."""
        return all(f.kind == "numeric" for f in self.features)


class LabelledBatch(msgspec.Struct, frozen=True):
    """Validated labelled rows: each row's features normalised to float or str, in the
    order of ``names`` (the schema's), labels to int or str. The store packs ``values``
    straight into the matrix; ``rows`` makes dicts only for whoever asks."""

    names: tuple[str, ...]
    values: list[tuple[FeatureValue, ...]] | npt.NDArray[np.float64]  # a matrix: all numeric
    labels: list[Label]

    @property
    def rows(self) -> list[dict[str, FeatureValue]]:
        """The rows as dicts (made on each call)."""
        values = self.values.tolist() if isinstance(self.values, np.ndarray) else self.values
        return [dict(zip(self.names, v, strict=True)) for v in values]


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


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    """One model family's best fit in a retrain, as the gate scored it on the holdout."""

    model_type: str
    accuracy: float
    train_rows: int
    fit_seconds: float
    windows_tried: str
    run_id: str = ""


class Capacity(msgspec.Struct, frozen=True, kw_only=True):
    """The champion could not be beaten on recent data: the loop waits for a change.

    Declared when a retrain started by the check finds no better model; held until a
    promotion (it names the champion it belongs to) or until the champion measures at
    or above the threshold again."""

    version: str
    level: float  # the champion's live accuracy when it was declared
    samples: int  # the rows that accuracy was measured on
    best: float  # the best challenger's holdout accuracy then
    families: list[str]
    declared_at: float
    row_id: int  # the newest labelled row then: a change must come after it
    drifted: list[str]  # features already drifting then (they do not count again)
    backoff_seconds: float
    retry_at: float
    trigger: str  # what started the retrain that found nothing better


class RetrainResult(msgspec.Struct, frozen=True):
    """The gate's verdict on one challenger (the best of the pool's candidates)."""

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
    candidates: list[Candidate] = msgspec.field(default_factory=list)
    # seconds the retrain waited for the tracking store to be prepared (MLflow creating
    # its tables: the first retrain after start-up, if it comes before the warm-up ends)
    tracking_prepared_seconds: float = 0.0


class CheckRecord(msgspec.Struct, frozen=True):
    """A compact record of one check, as stored."""

    at: float
    decision: str
    accuracy: float | None
    samples: int
    model_version: str | None
    drift_share: float | None
    reason: str
    estimated_accuracy: float | None = None  # before the labels come (core.estimate)
    estimated_samples: int = 0


class Delivery(msgspec.Struct, frozen=True):
    """The outcome of one alert to one channel (``target``: scheme and host only, the URL
    is a secret)."""

    channel: str
    ok: bool
    attempts: int
    status: int | None
    error: str | None
    target: str


class CandidateRun(msgspec.Struct, frozen=True):
    """A family the pool fitted but did not pick: its own run, under the retrain's."""

    name: str
    params: dict[str, str]
    metrics: dict[str, float]


class Logged(msgspec.Struct, frozen=True):
    """What a retrain left in the registry: the winner's run and version, the other runs."""

    run_id: str
    version: str
    parent_run_id: str
    candidate_run_ids: list[str]
