"""Retrain: train a challenger in the worker, record the gate's verdict, promote a winner.

One retrain at a time: an in-process lock answers 409 at once, and a database lease
keeps other replicas out. The lease is renewed by the heartbeat while the worker fits;
a retrain whose lease was lost meanwhile (its renewals failed, another replica took it)
records its challenger as rejected and does not promote. A failure (too few rows, MLflow down, time-out) is an event
and an alert; the champion keeps serving throughout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog

from continual.core.clock import Clock
from continual.core.errors import Conflict, ContinualError, TrainingFailed
from continual.core.ports import MetaPort, VersionsPort
from continual.core.types import ModelRecord, RetrainResult
from continual.services.alerts import Alerts
from continual.services.artifacts import warm_up
from continual.services.lease import LeaseKeeper
from continual.services.promote import Registry
from continual.services.training import train_challenger, warm_pool
from continual.services.trainjob import ChampionRef, TrainJob, TrainOutcome
from continual.services.worker import Worker
from continual.settings import Settings

log = structlog.get_logger("continual.retrain")

LEASE = "retrain"


class RetrainService:
    """Runs retrains, one at a time across every replica."""

    def __init__(
        self,
        meta: MetaPort,
        versions: VersionsPort,
        leases: LeaseKeeper,
        registry: Registry,
        worker: Worker,
        alerts: Alerts,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self.meta = meta
        self.versions = versions
        self.leases = leases
        self.registry = registry
        self.worker = worker
        self.alerts = alerts
        self.clock = clock
        self.settings = settings
        self._lock = asyncio.Lock()
        self._prepare_lock = asyncio.Lock()
        self.tracking_ready = False  # the worker has imported the estimators, MLflow its store
        self.preparing = False  # a retrain is waiting for that now
        self.outcomes: dict[str, int] = {}
        self.durations: list[float] = []
        # told of a rejected challenger (version, its score, the champion's): the trials
        # put one close to the gate into shadow
        self.on_rejected: Callable[[str, float, float | None], Awaitable[None]] | None = None

    @property
    def running(self) -> bool:
        """Whether a retrain is under way in this process."""
        return self._lock.locked()

    async def prepare(self) -> float:
        """Import the estimators and create the tracking store in the worker, once.

        The start-up warm-up calls this; so does every retrain, so that one arriving
        before the warm-up ended waits for it visibly (``preparing``) instead of silently
        paying MLflow's table creation (~10-15 s on a fresh embedded store). Returns the
        seconds this call waited (0.0 once the store is ready)."""
        if self.tracking_ready:
            return 0.0
        started = time.perf_counter()
        async with self._prepare_lock:
            if not self.tracking_ready:
                # the retrain's bound, not MLflow's: killing the worker mid-migration would
                # leave the embedded MLflow store half-migrated and every later retrain failing
                await self.worker.run(
                    self.settings.retrain_timeout_seconds, warm_up, self.registry.model_registry
                )
                self.tracking_ready = True
        return time.perf_counter() - started

    async def warm_pool(self) -> None:
        """Read the training pool into the worker's copy (``services.pool``) at start-up,
        so that the first retrain reads only the rows that arrived since."""
        if self._lock.locked():
            return  # a retrain reads it itself
        job = await asyncio.to_thread(self._job, "warm-up")
        started = time.perf_counter()
        rows = await self.worker.run(self.settings.retrain_timeout_seconds, warm_pool, job)
        log.info("pool_read", rows=rows, seconds=round(time.perf_counter() - started, 3))

    def last_retrain_at(self) -> float | None:
        """When the last retrain (of any outcome) started, from the database."""
        raw = self.meta.get_meta("last_retrain_at")
        return float(raw) if raw else None

    def _job(self, trigger: str, fresh_from: int | None = None) -> TrainJob:
        s = self.settings
        current = self.registry.holder.current
        change = self.meta.get_meta("change_row") or ""
        return TrainJob(
            database_url=s.database_url,
            models_dir=str(s.models_dir),
            model_types=s.models,
            seed=s.seed,
            strategy=s.train_strategy,
            train_window=s.train_window,
            replay_fraction=s.replay_fraction,
            holdout_fraction=s.holdout_fraction,
            max_holdout=max(50, s.eval_window // 4),
            min_improvement=s.min_improvement,
            threshold=s.performance_threshold,
            champion=None if current is None else ChampionRef(current.version, current.sha256),
            trigger=trigger,
            fresh_from=fresh_from,
            history_rows=s.history_rows,
            history_from=int(change) if change.isdigit() else None,
            search_seconds=s.search_seconds,
        )

    async def retrain(self, trigger: str, fresh_from: int | None = None) -> RetrainResult:
        """Train, gate and maybe promote a challenger; 409 if one is already running.

        ``fresh_from``: the row where the check located a rise in the champion's error
        rate; the gate's holdout is then taken from the rows since it."""
        if self._lock.locked():
            raise Conflict("a retrain is already running", {"running": True})
        async with self._lock:
            if not await asyncio.to_thread(self.leases.acquire, LEASE):
                raise Conflict("a retrain is already running on another replica", {"running": True})
            try:
                return await self._retrain(trigger, fresh_from)
            finally:
                await asyncio.to_thread(self.leases.release, LEASE)

    async def _retrain(self, trigger: str, fresh_from: int | None) -> RetrainResult:
        started = time.perf_counter()
        now = self.clock.now()
        await asyncio.to_thread(self.meta.set_meta, "last_retrain_at", repr(now))
        job = await asyncio.to_thread(self._job, trigger, fresh_from)
        await self.alerts.emit(
            "retrain_started",
            f"retrain started: {trigger}",
            {"trigger": trigger, "model_types": list(job.model_types), "strategy": job.strategy},
        )
        self.preparing = not self.tracking_ready
        try:
            try:
                prepared = await self.prepare()
            finally:
                self.preparing = False
            outcome: TrainOutcome = await self.worker.run(
                self.settings.retrain_timeout_seconds,
                train_challenger,
                job,
                self.registry.model_registry,
            )
        except ContinualError as exc:
            self._count("failed", started)
            kind = "insufficient" if isinstance(exc, TrainingFailed) else "error"
            await self.alerts.emit(
                "retrain_failed",
                f"retrain failed: {exc.message}",
                {"trigger": trigger, "error": exc.message, "error_kind": kind},
            )
            raise
        promote = outcome.promoted
        reason = outcome.reason
        if promote and not await asyncio.to_thread(self.leases.still_holds, LEASE):
            # another replica may be retraining on the same rows now: only one may promote
            promote = False
            reason = "lost the retrain lease before promotion (another replica took it)"
            log.warning("retrain_lease_lost", version=outcome.version)
        record = ModelRecord(
            version=outcome.version,
            run_id=outcome.run_id,
            model_type=outcome.model_type,
            status="challenger" if promote else "rejected",
            created_at=self.clock.now(),
            promoted_at=None,
            retired_at=None,
            metrics=outcome.metrics,
            params=outcome.params,
            reason=reason,
            sha256=outcome.sha256,
        )
        await asyncio.to_thread(self.versions.add_version, record, outcome.reference)
        data = {
            "version": outcome.version,
            "run_id": outcome.run_id,
            "challenger_accuracy": round(outcome.challenger_accuracy, 4),
            "champion_accuracy": None
            if outcome.champion_accuracy is None
            else round(outcome.champion_accuracy, 4),
            "train_rows": outcome.train_rows,
            "holdout_rows": outcome.holdout_rows,
            "trigger": trigger,
            "model_type": outcome.model_type,
            "candidates": {c.model_type: round(c.accuracy, 4) for c in outcome.candidates},
        }
        if promote:
            await self.registry.promote(outcome.version, reason, kind="promoted")
            self._count("promoted", started)
        else:
            await self.alerts.emit(
                "rejected", f"challenger version {outcome.version} rejected: {reason}", data
            )
            self._count("rejected", started)
            if self.on_rejected is not None:
                await self.on_rejected(
                    outcome.version, outcome.challenger_accuracy, outcome.champion_accuracy
                )
        log.info(
            "retrain_done",
            promoted=promote,
            version=outcome.version,
            model_type=outcome.model_type,
            seconds=round(time.perf_counter() - started, 3),
            fit_seconds=round(outcome.fit_seconds, 3),
            tracking_prepared_seconds=round(prepared, 3),
        )
        return RetrainResult(
            version=outcome.version,
            promoted=promote,
            challenger_accuracy=outcome.challenger_accuracy,
            champion_accuracy=outcome.champion_accuracy,
            run_id=outcome.run_id,
            reason=reason,
            model_type=outcome.model_type,
            train_rows=outcome.train_rows,
            holdout_rows=outcome.holdout_rows,
            duration_seconds=time.perf_counter() - started,
            candidates=outcome.candidates,
            tracking_prepared_seconds=round(prepared, 3),
        )

    def _count(self, outcome: str, started: float) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        self.durations.append(time.perf_counter() - started)
        del self.durations[:-100]
