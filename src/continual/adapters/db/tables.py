"""SQLModel table definitions: the layout the newest migration leaves (``migrations/``).

Indexes follow the loop's queries (see docs/architecture.md). Features are stored as one
packed block per row (``core.frame``): float64 values, categories as codes (``categories``).
"""

from __future__ import annotations

from sqlalchemy import Column, Index, LargeBinary
from sqlmodel import Field, SQLModel


class LabelledRow(SQLModel, table=True):
    """A labelled row in arrival order, with the score of the model live when it arrived."""

    __tablename__ = "labelled_rows"
    __table_args__ = (
        # live accuracy: this champion's scored rows, newest first
        Index("ix_rows_scored_version_id", "scored_version", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    arrived_at: float
    source: str = Field(max_length=16)
    feature_values: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    label: str = Field(index=True)
    scored_version: str | None = Field(default=None, max_length=32)
    correct: bool | None = None
    prediction_id: str | None = Field(default=None, max_length=64)
    batch_key: str | None = Field(default=None, max_length=128, index=True)


class PredictionRow(SQLModel, table=True):
    """A served prediction, kept so that late feedback can be scored against it."""

    __tablename__ = "predictions"

    id: str = Field(primary_key=True, max_length=64)
    created_at: float = Field(index=True)
    model_version: str = Field(max_length=32)
    feature_values: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    prediction: str


class FeedbackRow(SQLModel, table=True):
    """The true label of an earlier prediction; one per prediction id."""

    __tablename__ = "feedback"

    prediction_id: str = Field(primary_key=True, max_length=64)
    received_at: float
    label: str
    row_id: int


class ModelVersionRow(SQLModel, table=True):
    """A registered model version and its place in the loop (the source of truth)."""

    __tablename__ = "model_versions"

    version: str = Field(primary_key=True, max_length=32)
    run_id: str = Field(max_length=64)
    model_type: str = Field(max_length=64)
    status: str = Field(max_length=16, index=True)
    created_at: float
    promoted_at: float | None = None
    retired_at: float | None = None
    metrics: str = "{}"
    params: str = "{}"
    reason: str = ""
    sha256: str = Field(max_length=64)
    reference: str = "{}"
    since_row_id: int = 0


class ServedPeriodRow(SQLModel, table=True):
    """Which version served from when to when, and why."""

    __tablename__ = "served_periods"

    id: int | None = Field(default=None, primary_key=True)
    version: str = Field(max_length=32)
    started_at: float
    ended_at: float | None = None
    reason: str = ""
    end_reason: str | None = None


class EventRow(SQLModel, table=True):
    """One entry of the audit trail."""

    __tablename__ = "events"

    id: int | None = Field(default=None, primary_key=True)
    at: float
    kind: str = Field(max_length=32, index=True)
    message: str
    data: str = "{}"


class CheckRow(SQLModel, table=True):
    """One check, recorded compactly."""

    __tablename__ = "checks"

    id: int | None = Field(default=None, primary_key=True)
    at: float = Field(index=True)
    decision: str = Field(max_length=24)
    accuracy: float | None = None
    samples: int = 0
    model_version: str | None = Field(default=None, max_length=32)
    drift_share: float | None = None
    reason: str = ""
    estimated_accuracy: float | None = None
    estimated_samples: int = 0


class MetaRow(SQLModel, table=True):
    """Small key/value facts: the feature schema, the last retrain time."""

    __tablename__ = "meta"

    key: str = Field(primary_key=True, max_length=64)
    value: str


class LeaseRow(SQLModel, table=True):
    """A named lease so that exactly one replica runs a job at a time."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=128)
    expires_at: float


class IngestBatch(SQLModel, table=True):
    """Idempotency keys of stored batches: a retried batch is not stored twice."""

    __tablename__ = "ingest_batches"

    key: str = Field(primary_key=True, max_length=160)
    at: float
    rows: int
    digest: str | None = Field(default=None, max_length=64)  # None: stored by 0.x


class CategoryRow(SQLModel, table=True):
    """The code of each value of a categorical feature, as packed rows store it."""

    __tablename__ = "categories"

    feature: str = Field(primary_key=True, max_length=200)
    code: int = Field(primary_key=True)
    value: str = Field(max_length=1000)
    __table_args__ = (Index("ux_categories_feature_value", "feature", "value", unique=True),)


class ShadowPredictionRow(SQLModel, table=True):
    """What a challenger in shadow predicted on a live request; labelled by feedback."""

    __tablename__ = "shadow_predictions"
    __table_args__ = (
        Index("ix_shadow_prediction_id", "prediction_id"),
        # a trial's evidence: this version's labelled rows, newest first
        Index("ix_shadow_version_labelled", "version", "labelled_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    prediction_id: str = Field(max_length=64)
    version: str = Field(max_length=32)
    created_at: float
    prediction: str
    label: str | None = None
    champion_correct: bool | None = None
    labelled_at: float | None = None
