"""Wire types of the REST API. Feature values are checked by ``core.schema`` so that an
error can name the exact row and field (msgspec cannot name dynamic dict keys)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from continual.core.types import Prediction

FeatureMap = Annotated[
    dict[str, Any],
    msgspec.Meta(
        description="feature name -> number (numeric) or string (categorical)",
        examples=[{"feature1": 0.1, "feature2": -1.3}],
    ),
]
LabelledMap = Annotated[
    dict[str, Any],
    msgspec.Meta(
        description="features plus the label column (default `target`)",
        examples=[{"feature1": 0.1, "feature2": -1.3, "target": 1}],
    ),
]


class ErrorBody(msgspec.Struct):
    """Every error: a message and details naming the field or row."""

    error: str
    detail: Any = None


ColumnMap = Annotated[
    dict[str, list[Any]],
    msgspec.Meta(
        description="feature name -> its values, one per row (every list as long)",
        examples=[{"feature1": [0.1, 0.4], "feature2": [-1.3, 2.0]}],
    ),
]


class PredictRequest(msgspec.Struct, forbid_unknown_fields=True):
    """One row in ``features``, a batch in ``rows`` or in ``columns`` (exactly one of them)."""

    features: FeatureMap | None = None
    rows: list[FeatureMap] | None = None
    columns: ColumnMap | None = None
    output: Annotated[
        Literal["rows", "columns"],
        msgspec.Meta(description="`columns`: a batch answer as one list per output"),
    ] = "rows"


class ColumnarPredictions(msgspec.Struct):
    """A columnar batch answer: `prediction`, `confidence`, `prediction_id` lists and
    `probabilities` (class -> list), in row order."""

    model_version: str
    columns: dict[str, Any]


class BatchPredictions(msgspec.Struct):
    """A batch answer: the version used and one prediction per row, in order."""

    model_version: str
    predictions: list[Prediction]


class FeedbackItem(msgspec.Struct, forbid_unknown_fields=True):
    """The true label of an earlier prediction."""

    prediction_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    label: Annotated[int | str, msgspec.Meta(description="the true label")]


class FeedbackRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A batch of feedback items."""

    items: list[FeedbackItem]


class DataRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Labelled rows as JSON."""

    rows: list[LabelledMap]


class DataResponse(msgspec.Struct):
    """What ``POST /data`` and ``POST /generate`` stored."""

    accepted: int
    scored_by: str | None
    correct: int | None
    duplicate: bool = False


class GenerateRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Synthetic rows from make_classification; another concept is another boundary."""

    n_samples: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1000
    n_features: Annotated[int, msgspec.Meta(ge=2, le=100)] = 2
    concept: Annotated[int, msgspec.Meta(ge=0, le=3)] = 0
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)] | None = None


class GenerateResponse(msgspec.Struct):
    """What was generated and stored."""

    accepted: int
    concept: int
    seed: int
    n_features: int
    scored_by: str | None
    correct: int | None


class Health(msgspec.Struct):
    """Liveness."""

    status: str


class Ready(msgspec.Struct):
    """Readiness with the reason when not ready."""

    status: str
    reason: str | None = None
    model_version: str | None = None


class PromoteRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Why a version is made champion by hand."""

    reason: Annotated[str, msgspec.Meta(max_length=500)] = "manual promotion"


class RetrainRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Optional reason recorded with a manual retrain."""

    reason: Annotated[str, msgspec.Meta(max_length=500)] = "manual retrain"


class CanaryRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The share of traffic a canary answers (default ``CONTINUAL_CANARY_PERCENT``)."""

    percent: Annotated[float, msgspec.Meta(gt=0, le=100)] | None = None
