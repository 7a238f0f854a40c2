"""The check: measure the champion, decide, and retrain when it is due.

Live accuracy is the champion's accuracy on the newest ``eval_window`` labelled rows
that arrived after it went live (test-then-train scores stored with each row). Reading
it is one indexed query of ``eval_window`` rows: a check costs O(window), not O(history).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import structlog

from continual.adapters.db import Store
from continual.adapters.db.store import CheckRecord
from continual.core import drift
from continual.core.clock import Clock, iso
from continual.core.detect import errors_fire
from continual.core.errors import ContinualError
from continual.core.policy import CheckInputs, decide
from continual.core.types import Decision, RetrainResult, ServiceStatus
from continual.services.alerts import Alerts
from continual.services.holder import ModelHolder
from continual.services.retrain import RetrainService
from continual.settings import Settings

log = structlog.get_logger("continual.monitor")
_decode_rows = msgspec.json.Decoder(list[dict[str, float | str]]).decode


class Measurement(msgspec.Struct, frozen=True):
    """The champion's live numbers."""

    model_version: str | None
    accuracy: float | None
    samples: int
    detector_fired: bool
    detector_at: int | None


class CheckResult(msgspec.Struct, frozen=True, kw_only=True):
    """One check's decision with its reason and numbers (and the retrain's verdict)."""

    decision: Decision
    reason: str
    accuracy: float | None
    threshold: float
    samples: int
    min_samples: int
    window: int
    model_version: str | None
    detector_fired: bool
    drift: drift.DriftReport | None
    retrain: RetrainResult | None = None
    retrain_error: str | None = None
    at: str | None = None
    duration_seconds: float = 0.0


class ModelStatusView(msgspec.Struct, frozen=True, kw_only=True):
    """What ``GET /model-status`` shows."""

    status: ServiceStatus
    model_version: str | None
    model_type: str | None
    run_id: str | None
    champion_since: str | None
    accuracy: float | None
    threshold: float
    samples: int
    window: int
    min_samples: int
    last_check_at: str | None
    last_check_decision: str | None
    last_retrain_at: str | None
    next_check_at: str | None
    cooldown_seconds: float
    cooldown_remaining_seconds: float
    retrain_running: bool
    drift: drift.DriftReport | None


class Monitor:
    """Measures the champion and runs the check."""

    def __init__(
        self,
        store: Store,
        holder: ModelHolder,
        retrain: RetrainService,
        alerts: Alerts,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self.store = store
        self.holder = holder
        self.retrainer = retrain
        self.alerts = alerts
        self.clock = clock
        self.settings = settings
        self._references: dict[str, dict[str, Any]] = {}
        self.last_drift: drift.DriftReport | None = None
        self.last_check: CheckResult | None = None
        self.next_check_at: float | None = None
        self.decisions: dict[str, int] = {}
        self._lock = asyncio.Lock()

    def measure(self) -> Measurement:
        """Live accuracy of the champion over its window (blocking; O(window))."""
        bundle = self.holder.current
        if bundle is None:
            return Measurement(None, None, 0, False, None)
        flags = self.store.scored_window(
            bundle.version, bundle.since_row_id, self.settings.eval_window
        )
        accuracy = sum(flags) / len(flags) if flags else None
        fired, at = errors_fire(flags) if len(flags) >= self.settings.min_samples else (False, None)
        return Measurement(bundle.version, accuracy, len(flags), fired, at)

    def data_drift(self) -> drift.DriftReport | None:
        """Per-feature drift of recent inputs against the champion's training data."""
        bundle = self.holder.current
        if bundle is None:
            return None
        ref = self._references.get(bundle.version)
        if ref is None:
            ref = self.store.reference(bundle.version)
            self._references[bundle.version] = ref
        recent = self.store.recent_features(self.settings.eval_window)
        if not recent or not ref:
            return None
        rows = _decode_rows(("[" + ",".join(recent) + "]").encode())
        return drift.compare(ref, rows)

    def status_of(self, m: Measurement) -> ServiceStatus:
        """``no_model``, ``degraded`` (measured below threshold) or ``ok``."""
        if m.model_version is None:
            return "no_model"
        if (
            m.accuracy is not None
            and m.samples >= self.settings.min_samples
            and m.accuracy < self.settings.performance_threshold
        ):
            return "degraded"
        return "ok"

    async def check(self, trigger: str = "api") -> CheckResult:
        """Run one check; retrain if it decides so, and answer when that is done."""
        async with self._lock:
            return await self._check(trigger)

    async def _check(self, trigger: str) -> CheckResult:
        started = time.perf_counter()
        s = self.settings
        m = await asyncio.to_thread(self.measure)
        report = await asyncio.to_thread(self.data_drift)
        self.last_drift = report
        lo, hi = await asyncio.to_thread(self.store.row_id_bounds)
        last_retrain = await asyncio.to_thread(self.retrainer.last_retrain_at)
        now = self.clock.now()
        verdict = decide(
            CheckInputs(
                now=now,
                has_champion=m.model_version is not None,
                labelled_rows=0 if hi == 0 else hi - lo + 1,
                samples=m.samples,
                accuracy=m.accuracy,
                threshold=s.performance_threshold,
                min_samples=s.min_samples,
                detector_fired=m.detector_fired,
                last_retrain_at=last_retrain,
                cooldown_seconds=s.cooldown_seconds,
            )
        )
        await self._note_status(m)
        await asyncio.to_thread(
            self.store.add_check,
            CheckRecord(
                at=now,
                decision=verdict.decision,
                accuracy=m.accuracy,
                samples=m.samples,
                model_version=m.model_version,
                drift_share=None if report is None else report.drifted_share,
                reason=verdict.reason,
            ),
        )
        self.decisions[verdict.decision] = self.decisions.get(verdict.decision, 0) + 1
        log.info(
            "check",
            decision=verdict.decision,
            accuracy=m.accuracy,
            samples=m.samples,
            trigger=trigger,
        )
        retrain: RetrainResult | None = None
        error: str | None = None
        if verdict.decision == "retrain":
            try:
                retrain = await self.retrainer.retrain(f"check ({trigger}): {verdict.reason}")
            except ContinualError as exc:
                error = exc.message
        result = CheckResult(
            decision=verdict.decision,
            reason=verdict.reason,
            accuracy=m.accuracy,
            threshold=s.performance_threshold,
            samples=m.samples,
            min_samples=s.min_samples,
            window=s.eval_window,
            model_version=m.model_version,
            detector_fired=m.detector_fired,
            drift=report,
            retrain=retrain,
            retrain_error=error,
            at=iso(now),
            duration_seconds=round(time.perf_counter() - started, 4),
        )
        self.last_check = result
        return result

    async def _note_status(self, m: Measurement) -> None:
        status = self.status_of(m)
        before = await asyncio.to_thread(self.store.get_meta, "status")
        if before == status:
            return
        await asyncio.to_thread(self.store.set_meta, "status", status)
        acc = None if m.accuracy is None else round(m.accuracy, 4)
        data = {
            "version": m.model_version,
            "accuracy": acc,
            "samples": m.samples,
            "threshold": self.settings.performance_threshold,
        }
        if status == "degraded":
            await self.alerts.emit(
                "degraded",
                f"live accuracy {acc} fell below {self.settings.performance_threshold}",
                data,
            )
        elif status == "ok" and before == "degraded":
            await self.alerts.emit(
                "recovered", f"live accuracy {acc} is back at or above the threshold", data
            )

    def status(self) -> ModelStatusView:
        """The live status (blocking; O(window))."""
        m = self.measure()
        bundle = self.holder.current
        checks = self.store.checks(limit=1)
        last_retrain = self.retrainer.last_retrain_at()
        return ModelStatusView(
            status=self.status_of(m),
            model_version=m.model_version,
            model_type=None if bundle is None else bundle.model_type,
            run_id=None if bundle is None else bundle.run_id,
            champion_since=None if bundle is None else iso(bundle.promoted_at),
            accuracy=m.accuracy,
            threshold=self.settings.performance_threshold,
            samples=m.samples,
            window=self.settings.eval_window,
            min_samples=self.settings.min_samples,
            last_check_at=iso(checks[-1].at) if checks else None,
            last_check_decision=checks[-1].decision if checks else None,
            last_retrain_at=iso(last_retrain),
            next_check_at=iso(self.next_check_at),
            cooldown_seconds=self.settings.cooldown_seconds,
            cooldown_remaining_seconds=round(
                max(0.0, (last_retrain or 0.0) + self.settings.cooldown_seconds - self.clock.now()),
                3,
            ),
            retrain_running=self.retrainer.running,
            drift=self.last_drift,
        )
