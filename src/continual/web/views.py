"""Answers that carry times, as the API shows them: ISO 8601 UTC strings.

The domain keeps epoch seconds (floats: cheap to compare and store); every time the API
answers with is an ISO 8601 string in UTC with milliseconds, as ``/model-status`` and
``/check`` always gave (``2026-05-01T12:00:00.000+00:00``), so one answer family never
mixes two formats.
"""

from __future__ import annotations

import msgspec

from continual.core.clock import iso
from continual.core.types import DataSummary, Event, ModelRecord, ModelStatus, ServedPeriod


def _iso(ts: float) -> str:
    return iso(ts) or ""  # iso() only answers None for None


class ModelVersion(msgspec.Struct, frozen=True):
    """A registered model version (times ISO 8601 UTC)."""

    version: str
    run_id: str
    model_type: str
    status: ModelStatus
    created_at: str
    promoted_at: str | None
    retired_at: str | None
    metrics: dict[str, float]
    params: dict[str, str]
    reason: str
    sha256: str
    since_row_id: int = 0


class Served(msgspec.Struct, frozen=True):
    """Which version served from when to when (times ISO 8601 UTC), and why."""

    version: str
    started_at: str
    ended_at: str | None
    reason: str
    end_reason: str | None


class ModelsView(msgspec.Struct):
    """Every version with metrics and status, and which served when."""

    champion: str | None
    versions: list[ModelVersion]
    served: list[Served]


class EventView(msgspec.Struct, frozen=True):
    """Anything the loop decided or noticed (``at`` ISO 8601 UTC)."""

    id: int
    at: str
    kind: str
    message: str
    data: dict[str, object]


class DataView(msgspec.Struct, frozen=True):
    """What is stored: rows, label counts, first and last arrival (ISO 8601 UTC)."""

    rows: int
    labels: dict[str, int]
    first_at: str | None
    last_at: str | None


def model_version(r: ModelRecord) -> ModelVersion:
    """A version as the API shows it."""
    return ModelVersion(
        r.version,
        r.run_id,
        r.model_type,
        r.status,
        _iso(r.created_at),
        iso(r.promoted_at),
        iso(r.retired_at),
        r.metrics,
        r.params,
        r.reason,
        r.sha256,
        r.since_row_id,
    )


def models_view(versions: list[ModelRecord], served: list[ServedPeriod]) -> ModelsView:
    """``GET /models``: newest first, with the served periods."""
    champion = next((v.version for v in versions if v.status == "champion"), None)
    periods = [
        Served(p.version, _iso(p.started_at), iso(p.ended_at), p.reason, p.end_reason)
        for p in served
    ]
    return ModelsView(champion, [model_version(v) for v in versions], periods)


def event_view(e: Event) -> EventView:
    """An event as the API shows it."""
    return EventView(e.id, _iso(e.at), e.kind, e.message, e.data)


def data_view(s: DataSummary) -> DataView:
    """``GET /data``."""
    return DataView(s.rows, s.labels, iso(s.first_at), iso(s.last_at))
