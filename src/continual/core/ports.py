"""What the services need from the outside world, as Protocols (ports).

``adapters/db`` implements the storage ports with one repository per noun,
``adapters/tracking.MlflowRegistry`` the model registry and ``adapters/notify.HttpNotifier``
the notifier; a test may hand a service an in-memory fake through the composition root
instead. Storage ports raise ``core.errors`` (``StorageBusy``, ``StorageFull``,
``StorageFailed``), never a driver's exception; the registry raises
``TrackingUnavailable`` (unreachable, disk full) or ``TrainingFailed`` (a run it
refused); the notifier never raises, it reports a ``Delivery``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from continual.core.frame import Frame, Labelled
from continual.core.types import (
    CandidateRun,
    CheckRecord,
    DataSummary,
    Delivery,
    Event,
    FeatureSchema,
    FeatureValue,
    Logged,
    ModelRecord,
    ServedPeriod,
)


class MetaPort(Protocol):
    """Small facts and the fixed feature schema."""

    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def get_schema(self) -> FeatureSchema | None: ...
    def fix_schema(self, schema: FeatureSchema) -> FeatureSchema: ...


class CategoryPort(Protocol):
    """The codes that packed rows store for categorical values."""

    def codes(
        self, schema: FeatureSchema, values: Sequence[Sequence[FeatureValue]]
    ) -> list[dict[str, int]]:
        """Per feature, value -> code for every value of ``values`` (rows in schema order)."""
        ...


class RowsPort(Protocol):
    """The labelled rows: the training pool and the test-then-train scores."""

    def insert_rows(
        self,
        at: float,
        source: str,
        blobs: list[bytes],
        labels: list[str],
        scored_version: str | None,
        correct: list[bool | None],
        batch_key: str | None = None,
        digest: str | None = None,
    ) -> int: ...
    def summary(self) -> DataSummary: ...
    def row_id_bounds(self) -> tuple[int, int]: ...
    def recent_rows(self, schema: FeatureSchema, n: int) -> Labelled: ...
    def rows_after(self, schema: FeatureSchema, after_id: int) -> Labelled: ...
    def count_between(self, lo: int, hi: int) -> int: ...
    def rows_by_ids(self, schema: FeatureSchema, ids: Iterable[int]) -> Labelled: ...
    def scored_window_ids(
        self, version: str, since_row_id: int, window: int
    ) -> list[tuple[int, bool]]: ...
    def recent_features(self, schema: FeatureSchema, n: int) -> Frame: ...


class TrainingRowsPort(Protocol):
    """What a retrain reads of the pool: its id bounds, its newest rows, rows by id (the
    rows port, or the training worker's cache of it)."""

    def row_id_bounds(self) -> tuple[int, int]: ...
    def recent_rows(self, schema: FeatureSchema, n: int) -> Labelled: ...
    def rows_by_ids(self, schema: FeatureSchema, ids: Iterable[int]) -> Labelled: ...


class PredictionsPort(Protocol):
    """The prediction log and the feedback that labels it."""

    def insert_predictions(self, params: list[tuple[str, float, str, bytes, str]]) -> None: ...
    def get_predictions(self, ids: Sequence[str]) -> dict[str, tuple[str, bytes, str]]: ...
    def known_feedback(self, ids: Sequence[str]) -> set[str]: ...
    def insert_feedback(
        self,
        at: float,
        items: list[tuple[str, str, bytes, str, bool]],
        batch_key: str | None = None,
        digest: str | None = None,
    ) -> None: ...
    def recent_features_of(self, schema: FeatureSchema, version: str, n: int) -> Frame: ...


class ShadowsPort(Protocol):
    """What a challenger in shadow predicted, and the feedback that labels it."""

    def insert_shadow(self, params: list[tuple[str, str, float, str]]) -> None: ...
    def label_shadow(self, at: float, items: Sequence[tuple[str, str, bool]]) -> None: ...
    def shadow_window(self, version: str, n: int) -> list[tuple[bool, bool]]: ...


class VersionsPort(Protocol):
    """Model versions and served periods (the database is the champion's source of truth)."""

    def add_version(self, record: ModelRecord, reference: dict[str, Any]) -> None: ...
    def versions(self) -> list[ModelRecord]: ...
    def version(self, version: str) -> ModelRecord | None: ...
    def champion(self) -> ModelRecord | None: ...
    def reference(self, version: str) -> dict[str, Any]: ...
    def promote(
        self, version: str, at: float, reason: str, event: tuple[str, str, dict[str, Any]]
    ) -> str | None: ...
    def served_periods(self, limit: int = 100) -> list[ServedPeriod]: ...


class EventsPort(Protocol):
    """The audit trail and the record of checks."""

    def add_event(self, at: float, kind: str, message: str, data: dict[str, Any]) -> Event: ...
    def events(
        self, limit: int = 100, kind: str | None = None, before_id: int | None = None
    ) -> list[Event]: ...
    def add_check(self, record: CheckRecord) -> None: ...
    def checks(self, limit: int = 500) -> list[CheckRecord]: ...


class LeasesPort(Protocol):
    """Named leases: exactly one replica runs a job at a time."""

    def try_lease(
        self, name: str, holder: str, ttl: float, now: float, take_from: str | None = None
    ) -> bool: ...
    def lease_holder(self, name: str) -> str | None: ...
    def release_lease(self, name: str, holder: str) -> None: ...


class StoragePort(Protocol):
    """One database: a repository per noun, and what the process does with it whole."""

    @property
    def meta(self) -> MetaPort: ...
    @property
    def categories(self) -> CategoryPort: ...
    @property
    def rows(self) -> RowsPort: ...
    @property
    def predictions(self) -> PredictionsPort: ...
    @property
    def versions(self) -> VersionsPort: ...
    @property
    def events(self) -> EventsPort: ...
    @property
    def leases(self) -> LeasesPort: ...
    @property
    def shadows(self) -> ShadowsPort: ...
    def ping(self) -> None: ...
    def close(self) -> None: ...


class RegistryPort(Protocol):
    """The model registry: every retrain's runs, the registered versions, the champion alias.

    Its calls are slow, blocking I/O, made in a worker process (``services.worker``): an
    implementation crosses the process boundary as an argument of the worker's function,
    so it must pickle, and it connects lazily, on its first call in the worker."""

    def prepare(self) -> None:
        """Connect and create the store and the experiment (the first retrain's cost)."""
        ...

    def log_retrain(
        self,
        *,
        pipeline: Any,
        blob: bytes,
        input_example: Any,
        output_example: Any,
        params: Mapping[str, str],
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
        candidates: Sequence[CandidateRun] = (),
        onnx_blob: bytes | None = None,
    ) -> Logged:
        """Record one retrain (a run per candidate family) and register the winner's model:
        ``blob`` (and ``onnx_blob``) are our exact bytes, downloaded later by version."""
        ...

    def champion(self) -> str | None:
        """The version the registry's champion alias names, or ``None``."""
        ...

    def point_champion(self, version: str) -> None:
        """Point the champion alias at ``version``."""
        ...

    def count_versions(self) -> int:
        """How many versions are registered."""
        ...

    def download(self, version: str, onnx: bool = False) -> bytes:
        """The bytes ``log_retrain`` kept for ``version`` (its ONNX form with ``onnx``),
        unverified: the caller checks the digest it recorded."""
        ...


class NotifierPort(Protocol):
    """Outbound alerts: a JSON post to a channel's webhook, a push monitor's heartbeat.

    Bounded (a timeout per attempt, a few attempts); it never raises to the caller."""

    async def deliver(self, channel: str, url: str, payload: dict[str, Any]) -> Delivery:
        """POST ``payload`` to ``url``; the outcome, for the audit trail."""
        ...

    async def push(self, url: str, params: dict[str, str]) -> bool:
        """One heartbeat GET; whether it was answered with a 2xx."""
        ...

    async def close(self) -> None:
        """Release connections (the notifier may be used again after)."""
        ...
