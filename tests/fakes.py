"""In-memory fakes of our ports (``core.ports``), for service tests that need no database,
no MLflow and no webhook receiver: handed to ``bootstrap(settings, database=FakeStorage(),
notifier=FakeNotifier(), registry=FakeRegistry(), worker=InlineWorker())``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec
import numpy as np

from continual.core.errors import DuplicateBatch, NotFound, TrackingUnavailable
from continual.core.frame import Frame, Labelled, labels_from, unpack
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
from continual.services.worker import Worker

T = TypeVar("T")


class FakeMeta:
    """Facts in a dict."""

    def __init__(self) -> None:
        self.facts: dict[str, str] = {}
        self.schema: FeatureSchema | None = None

    def get_meta(self, key: str) -> str | None:
        return self.facts.get(key)

    def set_meta(self, key: str, value: str) -> None:
        self.facts[key] = value

    def get_schema(self) -> FeatureSchema | None:
        return self.schema

    def fix_schema(self, schema: FeatureSchema) -> FeatureSchema:
        self.schema = self.schema or schema
        return self.schema


class FakeCategories:
    """Codes in order of first sight."""

    def __init__(self) -> None:
        self.table: dict[str, dict[str, int]] = {}

    def codes(
        self, schema: FeatureSchema, values: Sequence[Sequence[FeatureValue]]
    ) -> list[dict[str, int]]:
        out = []
        for j, f in enumerate(schema.features):
            known = self.table.setdefault(f.name, {})
            if f.kind == "categorical":
                for v in values:
                    known.setdefault(str(v[j]), len(known))
            out.append(known)
        return out

    def levels(self, schema: FeatureSchema) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(self.table.get(f.name, {})) for f in schema.features)


class FakeRows:
    """Rows in a list: (id, at, source, blob, label, scored_version, correct)."""

    def __init__(self, categories: FakeCategories) -> None:
        self.stored: list[tuple[int, float, str, bytes, str, str | None, bool | None]] = []
        self.keys: set[str] = set()
        self.categories = categories

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
    ) -> int:
        if batch_key is not None:
            if batch_key in self.keys:
                raise DuplicateBatch("seen", {"key": batch_key})
            self.keys.add(batch_key)
        for b, lab, c in zip(blobs, labels, correct, strict=True):
            self.stored.append((len(self.stored) + 1, at, source, b, lab, scored_version, c))
        return len(blobs)

    def summary(self) -> DataSummary:
        labels: dict[str, int] = {}
        for r in self.stored:
            labels[r[4]] = labels.get(r[4], 0) + 1
        ats = [r[1] for r in self.stored]
        return DataSummary(len(self.stored), labels, min(ats, default=None), max(ats, default=None))

    def row_id_bounds(self) -> tuple[int, int]:
        return (1, len(self.stored)) if self.stored else (0, 0)

    def _labelled(self, schema: FeatureSchema, got: list[Any]) -> Labelled:
        x = unpack(schema, [r[3] for r in got], self.categories.levels(schema))
        ids = np.asarray([r[0] for r in got], dtype=np.int64)
        return Labelled(ids, x, labels_from(schema, [r[4] for r in got]))

    def recent_rows(self, schema: FeatureSchema, n: int) -> Labelled:
        return self._labelled(schema, self.stored[-n:] if n else [])

    def rows_after(self, schema: FeatureSchema, after_id: int) -> Labelled:
        return self._labelled(schema, [r for r in self.stored if r[0] > after_id])

    def count_between(self, lo: int, hi: int) -> int:
        return sum(1 for r in self.stored if lo <= r[0] <= hi)

    def rows_by_ids(self, schema: FeatureSchema, ids: Iterable[int]) -> Labelled:
        wanted = set(ids)
        return self._labelled(schema, [r for r in self.stored if r[0] in wanted])

    def scored_window_ids(
        self, version: str, since_row_id: int, window: int
    ) -> list[tuple[int, bool]]:
        mine = [(r[0], bool(r[6])) for r in self.stored if r[5] == version and r[0] > since_row_id]
        return mine[-window:]

    def recent_features(self, schema: FeatureSchema, n: int) -> Frame:
        return self.recent_rows(schema, n).x


class FakePredictions:
    """Predictions and feedback in dicts."""

    def __init__(self, categories: FakeCategories) -> None:
        self.logged: dict[str, tuple[str, bytes, str]] = {}
        self.feedback: dict[str, str] = {}
        self.categories = categories

    def recent_features_of(self, schema: FeatureSchema, version: str, n: int) -> Frame:
        blobs = [b for v, b, _p in self.logged.values() if v == version][-n:] if n else []
        return unpack(schema, blobs, self.categories.levels(schema))

    def insert_predictions(self, params: list[tuple[str, float, str, bytes, str]]) -> None:
        self.logged.update({pid: (v, b, p) for pid, _at, v, b, p in params})

    def get_predictions(self, ids: Sequence[str]) -> dict[str, tuple[str, bytes, str]]:
        return {i: self.logged[i] for i in ids if i in self.logged}

    def known_feedback(self, ids: Sequence[str]) -> set[str]:
        return {i for i in ids if i in self.feedback}

    def insert_feedback(
        self,
        at: float,
        items: list[tuple[str, str, bytes, str, bool]],
        batch_key: str | None = None,
        digest: str | None = None,
    ) -> None:
        self.feedback.update({pid: lab for pid, lab, _b, _v, _c in items})


class FakeVersions:
    """No versions until a test adds them; a promotion writes its event to ``events``."""

    def __init__(self, events: FakeEvents) -> None:
        self.records: dict[str, ModelRecord] = {}
        self.periods: list[ServedPeriod] = []
        self.events = events

    def add_version(self, record: ModelRecord, reference: dict[str, Any]) -> None:
        self.records[record.version] = record

    def versions(self) -> list[ModelRecord]:
        return list(self.records.values())

    def version(self, version: str) -> ModelRecord | None:
        return self.records.get(version)

    def champion(self) -> ModelRecord | None:
        return next((r for r in self.records.values() if r.status == "champion"), None)

    def reference(self, version: str) -> dict[str, Any]:
        return {}

    def promote(
        self, version: str, at: float, reason: str, event: tuple[str, str, dict[str, Any]]
    ) -> str | None:
        old = self.champion()
        if old is not None:
            self.records[old.version] = msgspec.structs.replace(
                old, status="retired", retired_at=at
            )
            self.periods[-1] = msgspec.structs.replace(
                self.periods[-1], ended_at=at, end_reason=f"replaced by version {version}"
            )
        self.records[version] = msgspec.structs.replace(
            self.records[version], status="champion", promoted_at=at, retired_at=None
        )
        self.periods.append(ServedPeriod(version, at, None, reason, None))
        self.events.add_event(at, *event)
        return None if old is None else old.version

    def served_periods(self, limit: int = 100) -> list[ServedPeriod]:
        return self.periods[::-1][:limit]


class FakeEvents:
    """Events and checks in lists."""

    def __init__(self) -> None:
        self.trail: list[Event] = []
        self.recorded: list[CheckRecord] = []

    def add_event(self, at: float, kind: str, message: str, data: dict[str, Any]) -> Event:
        event = Event(id=len(self.trail) + 1, at=at, kind=kind, message=message, data=data)
        self.trail.append(event)
        return event

    def events(
        self, limit: int = 100, kind: str | None = None, before_id: int | None = None
    ) -> list[Event]:
        found = [e for e in reversed(self.trail) if kind in (None, e.kind)]
        return [e for e in found if before_id is None or e.id < before_id][:limit]

    def add_check(self, record: CheckRecord) -> None:
        self.recorded.append(record)

    def checks(self, limit: int = 500) -> list[CheckRecord]:
        return self.recorded[-limit:]


class FakeShadows:
    """Shadow predictions in a list: [prediction id, version, predicted, label, champion right]."""

    def __init__(self) -> None:
        self.logged: list[list[Any]] = []

    def insert_shadow(self, params: list[tuple[str, str, float, str]]) -> None:
        self.logged.extend([pid, v, p, None, None] for pid, v, _at, p in params)

    def label_shadow(self, at: float, items: Sequence[tuple[str, str, bool]]) -> None:
        labels = {pid: (lab, ok) for pid, lab, ok in items}
        for row in self.logged:
            if row[0] in labels and row[3] is None:
                row[3], row[4] = labels[row[0]]

    def shadow_window(self, version: str, n: int) -> list[tuple[bool, bool]]:
        mine = [(r[2] == r[3], bool(r[4])) for r in self.logged if r[1] == version and r[3]]
        return mine[-n:]


class FakeLeases:
    """Every lease is granted."""

    def try_lease(
        self, name: str, holder: str, ttl: float, now: float, take_from: str | None = None
    ) -> bool:
        return True

    def lease_holder(self, name: str) -> str | None:
        return None

    def release_lease(self, name: str, holder: str) -> None:
        return None


class FakeStorage:
    """The storage ports, all in memory."""

    def __init__(self) -> None:
        self.meta = FakeMeta()
        self.categories = FakeCategories()
        self.rows = FakeRows(self.categories)
        self.predictions = FakePredictions(self.categories)
        self.events = FakeEvents()
        self.versions = FakeVersions(self.events)
        self.leases = FakeLeases()
        self.shadows = FakeShadows()

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None


class FakeRegistry:
    """A model registry in memory: each version's bytes, the champion alias, the calls.

    Its state lives in the process that calls it: give the services an ``InlineWorker``
    with it (a pickled copy in a worker process would change only itself). ``down``
    makes every call fail as an unreachable MLflow does."""

    def __init__(self) -> None:
        self.blobs: dict[str, tuple[bytes, bytes | None]] = {}
        self.alias: str | None = None
        self.calls: list[tuple[str, ...]] = []
        self.down = False

    def _call(self, *call: str) -> None:
        self.calls.append(call)
        if self.down:
            raise TrackingUnavailable("MLflow did not answer", {"reason": "fake"})

    def register(self, blob: bytes, onnx_blob: bytes | None = None) -> str:
        """Register ``blob`` as the next version, as a retrain in the worker would."""
        version = str(len(self.blobs) + 1)
        self.blobs[version] = (blob, onnx_blob)
        return version

    def prepare(self) -> None:
        self._call("prepare")

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
        self._call("log_retrain")
        version = self.register(blob, onnx_blob)
        others = [f"run-{version}-{c.name}" for c in candidates]
        return Logged(f"run-{version}", version, f"retrain-{version}", others)

    def champion(self) -> str | None:
        self._call("champion")
        return self.alias

    def point_champion(self, version: str) -> None:
        self._call("point_champion", version)
        self.alias = version

    def count_versions(self) -> int:
        self._call("count_versions")
        return len(self.blobs)

    def download(self, version: str, onnx: bool = False) -> bytes:
        self._call("download", version, "onnx" if onnx else "model")
        blob, onnx_blob = self.blobs.get(version, (None, None))
        got = onnx_blob if onnx else blob
        if got is None:
            raise NotFound(f"version {version} has no such artifact", {"version": version})
        return got


class FakeNotifier:
    """Alerts recorded instead of sent. A channel in ``failing`` answers as a receiver that
    kept failing does (HTTP 500, three attempts); ``push_ok`` is the heartbeat's answer."""

    def __init__(self, failing: Iterable[str] = (), push_ok: bool = True) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.pushes: list[tuple[str, dict[str, str]]] = []
        self.failing = set(failing)
        self.push_ok = push_ok
        self.closed = 0

    async def deliver(self, channel: str, url: str, payload: dict[str, Any]) -> Delivery:
        self.sent.append((channel, url, payload))
        target = f"{urlsplit(url).scheme}://{urlsplit(url).hostname}/…"
        if channel in self.failing:
            return Delivery(channel, False, 3, 500, "HTTP 500", target)
        return Delivery(channel, True, 1, 204, None, target)

    async def push(self, url: str, params: dict[str, str]) -> bool:
        self.pushes.append((url, params))
        return self.push_ok

    async def close(self) -> None:
        self.closed += 1


class FixedClock:
    """A clock that shows ``at`` until a test moves it."""

    def __init__(self, at: float = 1_700_000_000.0) -> None:
        self.at = at

    def now(self) -> float:
        return self.at


class InlineWorker(Worker):
    """Runs the worker's functions in this process (in a thread), with their time limit:
    the calls a fake registry receives stay visible to the test."""

    async def run(self, timeout: float, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wait_for(asyncio.to_thread(fn, *args), timeout)

    def kill(self) -> None:
        return None
