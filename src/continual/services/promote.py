"""Promotion, rollback and loading the champion.

The database is the source of truth for which version is champion. A promotion loads
and verifies the new model first, then commits one transaction (status, served period,
event), then swaps it into memory; the registry's ``champion`` alias follows (reconciled
in the background, at start-up and on every check), so a crash between any two steps
leaves a state that the next start-up completes. The registry (``core.ports.RegistryPort``,
MLflow in production) is reached only in a worker process, never in this one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from continual.adapters.models import LINEAR_TYPES, CompiledModel, write_atomic
from continual.core.clock import Clock
from continual.core.errors import ContinualError, NotFound, Unavailable
from continual.core.ports import MetaPort, RegistryPort, VersionsPort
from continual.core.types import FeatureSchema, ModelRecord
from continual.services.alerts import Alerts
from continual.services.artifacts import fetch_blob, prepare_download, serving_form, set_alias
from continual.services.holder import ModelBundle, ModelHolder
from continual.services.worker import Worker
from continual.settings import Settings

log = structlog.get_logger("continual.promote")


class Registry:
    """Decides which version serves, loads it, and keeps the registry's alias in step."""

    def __init__(
        self,
        versions: VersionsPort,
        meta: MetaPort,
        model_registry: RegistryPort,
        holder: ModelHolder,
        worker: Worker,
        alerts: Alerts,
        clock: Clock,
        settings: Settings,
        fetcher: Worker | None = None,
    ) -> None:
        self.versions = versions
        self.meta = meta
        # handed to the worker with each call (see ``artifacts``): it must pickle
        self.model_registry = model_registry
        self.holder = holder
        self.worker = worker
        # downloads go to a worker of their own: a replica whose training worker is busy
        # (its start-up warm-up, a retrain) would otherwise serve a new champion late
        self.fetcher = fetcher or worker
        self.alerts = alerts
        self.clock = clock
        self.models_dir = settings.models_dir
        self.timeout = settings.mlflow_timeout_seconds * (settings.mlflow_max_retries + 1) * 3 + 30
        self.lock = asyncio.Lock()
        self._alias_task: asyncio.Task[None] | None = None
        self._alias_wanted = False
        self.alias_in_sync: bool | None = None
        self.promotions = 0
        # told of every promotion (the trials end theirs: its evidence was against the old one)
        self.on_promote: Callable[[str], Awaitable[None]] | None = None

    async def _blob(self, record: ModelRecord) -> bytes:
        """The verified bytes of a version: the local copy, else the registry (then cached)."""
        path = self.models_dir / f"{record.version}.pkl"
        try:
            blob = await asyncio.to_thread(path.read_bytes)
            loads_verified_digest(blob, record.sha256)
            return blob
        except (OSError, ValueError) as exc:
            log.warning("local_model_unusable", version=record.version, reason=type(exc).__name__)
        blob = await self.fetcher.run(self.timeout, fetch_blob, self.model_registry, record.version)
        loads_verified_digest(blob, record.sha256)
        await asyncio.to_thread(write_atomic, path, blob)
        log.info("model_fetched", version=record.version, bytes=len(blob), source="mlflow")
        return blob

    async def prepare_fetcher(self) -> None:
        """Start the download worker ahead of the first champion to fetch."""
        if self.fetcher is not self.worker:
            await self.fetcher.run(self.timeout, prepare_download, self.model_registry)

    async def _onnx(self, record: ModelRecord) -> bytes | None:
        """The verified ONNX bytes of a tree-family version: the local copy, else the registry
        (then cached); ``None`` (serve through sklearn) for a version without them or
        whose bytes cannot be had."""
        digest = record.params.get("onnx_sha256")
        if record.model_type in LINEAR_TYPES:
            return None
        if not digest:
            log.warning(
                "onnx_unavailable",
                version=record.version,
                reason=record.params.get("onnx_error", "none recorded"),
            )
            return None
        path = self.models_dir / f"{record.version}.onnx"
        try:
            blob = await asyncio.to_thread(path.read_bytes)
            loads_verified_digest(blob, digest)
            return blob
        except (OSError, ValueError) as exc:
            log.warning("local_onnx_unusable", version=record.version, reason=type(exc).__name__)
        try:
            blob = await self.fetcher.run(
                self.timeout, fetch_blob, self.model_registry, record.version, True
            )
            loads_verified_digest(blob, digest)
        except (ContinualError, ValueError) as exc:
            log.warning("onnx_fetch_failed", version=record.version, reason=str(exc)[:200])
            return None
        await asyncio.to_thread(write_atomic, path, blob)
        return blob

    async def bundle(self, record: ModelRecord, schema: FeatureSchema) -> ModelBundle:
        """Load, verify and compile a version into a servable bundle (through ONNX when
        the version has verified ONNX bytes and is not linear)."""
        try:
            blob = await self._blob(record)
        except ValueError as exc:
            await self.alerts.emit(
                "model_refused",
                f"version {record.version} refused at load: {exc}",
                {"version": record.version},
            )
            raise Unavailable(
                f"version {record.version} failed verification", {"version": record.version}
            ) from exc
        # unpickled in the download worker: this process never imports scikit-learn
        form = await self.fetcher.run(self.timeout, serving_form, blob, record.sha256)
        onnx = await self._onnx(record)
        model = await asyncio.to_thread(CompiledModel, form, schema, onnx, serving=True)
        return ModelBundle(
            version=record.version,
            run_id=record.run_id,
            model_type=record.model_type,
            model=model,
            schema=schema,
            sha256=record.sha256,
            promoted_at=record.promoted_at,
            since_row_id=record.since_row_id,
        )

    async def load_champion(self) -> ModelBundle | None:
        """Serve whatever the database says is champion (start-up and replica sync)."""
        record = await asyncio.to_thread(self.versions.champion)
        schema = await asyncio.to_thread(self.meta.get_schema)
        if record is None or schema is None:
            return None
        current = self.holder.current
        if (
            current is not None
            and current.version == record.version
            and current.promoted_at == record.promoted_at
        ):
            return current
        bundle = await self.bundle(record, schema)
        self.holder.swap(bundle)
        log.info("champion_loaded", version=record.version)
        return bundle

    async def promote(
        self,
        version: str,
        reason: str,
        kind: str = "rollback",
        evidence: dict[str, Any] | None = None,
    ) -> ModelRecord:
        """Make ``version`` the champion: verify, commit, swap, then move the alias.

        ``evidence``: what the decision rests on (a trial's live numbers), in the event."""
        async with self.lock:
            record = await asyncio.to_thread(self.versions.version, version)
            schema = await asyncio.to_thread(self.meta.get_schema)
            if record is None or schema is None:
                raise NotFound(f"model version {version!r} is not known", {"version": version})
            bundle = await self.bundle(record, schema)
            previous = self.holder.current
            now = self.clock.now()
            message = (
                f"version {version} promoted: {reason}"
                if kind == "promoted"
                else f"version {version} made champion by hand: {reason}"
            )
            data: dict[str, object] = {
                "version": version,
                "previous": previous.version if previous else None,
                "reason": reason,
            }
            if evidence is not None:
                data["evidence"] = evidence
            await asyncio.to_thread(
                self.versions.promote, version, now, reason, (kind, message, data)
            )
            fresh = await asyncio.to_thread(self.versions.version, version)
            assert fresh is not None
            self.holder.swap(
                ModelBundle(
                    version=bundle.version,
                    run_id=bundle.run_id,
                    model_type=bundle.model_type,
                    model=bundle.model,
                    schema=bundle.schema,
                    sha256=bundle.sha256,
                    promoted_at=fresh.promoted_at,
                    since_row_id=fresh.since_row_id,
                )
            )
            if self.alerts.channels:
                from continual.core.types import Event

                self.alerts.send(Event(id=0, at=now, kind=kind, message=message, data=data))
            self.promotions += 1
            if self.on_promote is not None:
                await self.on_promote(version)
            log.info("champion_swapped", version=version, previous=data["previous"], kind=kind)
        self.reconcile_alias_soon()
        return fresh

    def reconcile_alias_soon(self) -> None:
        """Move the registry's alias to the database champion in the background.

        Requests made while a move is under way are coalesced into one more pass, so
        the alias always ends on the latest champion."""
        self._alias_wanted = True
        if self._alias_task is None or self._alias_task.done():
            self._alias_task = asyncio.get_running_loop().create_task(self._alias_loop())

    async def _alias_loop(self) -> None:
        while self._alias_wanted:
            self._alias_wanted = False
            await self.reconcile_alias()

    async def reconcile_alias(self) -> None:
        """Make the registry's ``champion`` alias match the database; a failure is an event."""
        record = await asyncio.to_thread(self.versions.champion)
        if record is None:
            return
        try:
            before = await self.worker.run(
                self.timeout, set_alias, self.model_registry, record.version
            )
        except ContinualError as exc:
            self.alias_in_sync = False
            await self.alerts.emit(
                "alias_sync_failed",
                f"could not point MLflow alias champion at version {record.version}: {exc.message}",
                {"version": record.version},
            )
            return
        self.alias_in_sync = True
        if before != record.version:
            log.info("alias_moved", version=record.version, before=before)

    async def wait_alias(self) -> None:
        """Wait for a pending alias move (tests, shutdown)."""
        if self._alias_task is not None:
            await asyncio.wait({self._alias_task}, timeout=self.timeout)


def loads_verified_digest(blob: bytes, digest: str) -> None:
    """Raise ``ValueError`` unless ``blob`` has the recorded digest."""
    from continual.adapters.models import sha256

    if sha256(blob) != digest:
        raise ValueError("digest mismatch: the file is not the one this service registered")
