"""The check: measure the champion (``measure``), decide (``core.policy``), retrain when
it is due, and keep the capacity state (``capacity``) and the status alerts in step."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from continual.core import drift
from continual.core.clock import Clock, iso
from continual.core.errors import ContinualError
from continual.core.policy import CheckInputs, decide
from continual.core.ports import EventsPort, MetaPort, RowsPort, VersionsPort
from continual.core.types import Capacity, CheckRecord, RetrainResult, ServiceStatus
from continual.services.alerts import Alerts
from continual.services.capacity import CapacityKeeper, capacity_view
from continual.services.estimate import Estimate
from continual.services.holder import ModelHolder
from continual.services.measure import Measurement, Measurer
from continual.services.quality import QualityCounter, alert_on_change
from continual.services.refresh import RefreshState
from continual.services.retrain import RetrainService
from continual.services.status import CheckResult, ModelStatusView
from continual.services.trials import TrialService
from continual.settings import Settings

log = structlog.get_logger("continual.monitor")

__all__ = ["CheckResult", "ModelStatusView", "Monitor"]  # the check's views live in status


class Monitor:
    """Measures the champion and runs the check."""

    def __init__(
        self,
        rows: RowsPort,
        versions: VersionsPort,
        events: EventsPort,
        meta: MetaPort,
        holder: ModelHolder,
        retrain: RetrainService,
        alerts: Alerts,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self.rows = rows
        self.versions = versions
        self.events = events
        self.meta = meta
        self.holder = holder
        self.retrainer = retrain
        self.alerts = alerts
        self.clock = clock
        self.settings = settings
        self.measurer = Measurer(rows, versions, holder, settings)
        self.capacity_keeper = CapacityKeeper(meta, alerts, clock, settings)
        self.refresh = RefreshState(versions, meta)
        self.last_drift: drift.DriftReport | None = None
        self.last_check: CheckResult | None = None
        self.next_check_at: float | None = None
        self.decisions: dict[str, int] = {}
        self._lock = asyncio.Lock()
        # wired by the composition root once they exist (they need the measurer's cache)
        self.estimate: Callable[[], Estimate | None] = lambda: None
        self.quality: QualityCounter | None = None
        self.trials: TrialService | None = None

    def measure(self) -> Measurement:
        """The champion's live numbers (blocking; O(window))."""
        return self.measurer.measure()

    def data_drift(self) -> drift.DriftReport | None:
        """Per-feature drift of recent inputs against the champion's training data."""
        return self.measurer.data_drift()

    def status_of(self, m: Measurement) -> ServiceStatus:
        """``no_model``, ``collecting``, ``degraded`` or ``ok`` for a measurement."""
        return self.measurer.status_of(m)

    def categories(self) -> dict[str, list[str]]:
        """The champion's known categories per categorical feature, most frequent first."""
        return self.measurer.categories()

    def capacity(self, version: str | None) -> Capacity | None:
        """The capacity state held for ``version`` (the champion), if any (blocking)."""
        return self.capacity_keeper.held(version)

    async def check(self, trigger: str = "api") -> CheckResult:
        """Run one check; retrain if it decides so, and answer when that is done."""
        async with self._lock:
            return await self._check(trigger)

    async def _check(self, trigger: str) -> CheckResult:
        started = time.perf_counter()
        s = self.settings
        trial = None if self.trials is None else await self.trials.judge()
        m = await asyncio.to_thread(self.measure)
        est = await asyncio.to_thread(self.estimate)
        quality = None
        if self.quality is not None:
            quality = self.quality.take()
            await alert_on_change(quality, self.quality.flagged, self.alerts)
            if quality.rows:
                self.quality.flagged, self.quality.last = quality.flagged, quality
        report = await asyncio.to_thread(self.data_drift)
        self.last_drift = report
        lo, hi = await asyncio.to_thread(self.rows.row_id_bounds)
        last_retrain = await asyncio.to_thread(self.retrainer.last_retrain_at)
        young = await asyncio.to_thread(self.refresh.young, m.model_version, hi)
        cap = await asyncio.to_thread(self.capacity, m.model_version)
        now = self.clock.now()
        if (
            cap is not None
            and cap.level < s.performance_threshold
            and m.accuracy is not None
            and m.samples >= s.min_samples
            and m.accuracy >= s.performance_threshold
        ):
            cap = None  # the champion is measured above the threshold again
            await self.capacity_keeper.clear()
        # ``drifted``: what the capacity state records as already drifting (the
        # per-feature test); ``alarming``: what counts as a new change, at a family-wise
        # significance (Bonferroni over the features): on a stationary stream of 20
        # features one of them passes the per-feature test now and then by chance
        features = [] if report is None else report.features
        drifted = [f.feature for f in features if f.drifted]
        bar = drift.P_VALUE / max(1, len(features))
        alarming = [f.feature for f in features if f.drifted and f.p_value < bar]
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
                fit_rows=young.fit_rows,
                rows_since_change=young.rows_since_change,
                last_refresh_rows=young.last_refresh_rows,
                refresh_until=s.history_rows,
                capacity=cap,
                change_after_capacity=(
                    cap is not None
                    and m.detector_row_id is not None
                    and m.detector_row_id > cap.row_id
                ),
                new_drift=() if cap is None else tuple(d for d in alarming if d not in cap.drifted),
                rows_since_capacity=0 if cap is None else hi - cap.row_id,
                estimated_accuracy=None if est is None else est.accuracy,
                estimated_samples=0 if est is None else est.samples,
                act_on_estimate=s.act_on_estimate,
            )
        )
        await self._note_status(m)
        await asyncio.to_thread(
            self.events.add_check,
            CheckRecord(
                at=now,
                decision=verdict.decision,
                accuracy=m.accuracy,
                samples=m.samples,
                model_version=m.model_version,
                drift_share=None if report is None else report.drifted_share,
                reason=verdict.reason,
                estimated_accuracy=None if est is None else est.accuracy,
                estimated_samples=0 if est is None else est.samples,
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
            fresh_from = m.change_row_id
            if fresh_from is not None:  # the window search looks back no further than it
                await asyncio.to_thread(self.meta.set_meta, "change_row", str(fresh_from))
            if verdict.refresh and young.change_row is not None:
                # a refresh keeps judging on, and training from, the same change
                fresh_from = young.change_row
                await asyncio.to_thread(
                    self.meta.set_meta, "refresh", f"{young.change_row}:{young.rows_since_change}"
                )
            try:
                retrain = await self.retrainer.retrain(
                    f"check ({trigger}): {verdict.reason}", fresh_from=fresh_from
                )
            except ContinualError as exc:
                error = exc.message
            if retrain is not None:
                cap = await self.capacity_keeper.after_retrain(
                    verdict, retrain, m, cap, drifted, hi, now
                )
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
            capacity=capacity_view(cap),
            estimated_accuracy=None if est is None else est.accuracy,
            estimated_samples=0 if est is None else est.samples,
            quality=quality,
            trial=trial,
        )
        self.last_check = result
        return result

    async def _note_status(self, m: Measurement) -> None:
        status = self.status_of(m)
        if status == "collecting":
            # not a judgement: the last one stands, so that a new champion's first
            # measured ok after a degraded one is "recovered", and no flip alerts twice
            return
        before = await asyncio.to_thread(self.meta.get_meta, "status")
        if before == status:
            return
        await asyncio.to_thread(self.meta.set_meta, "status", status)
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
        est = self.estimate()
        bundle = self.holder.current
        trial = self.holder.trial
        checks = self.events.checks(limit=1)
        last_retrain = self.retrainer.last_retrain_at()
        return ModelStatusView(
            status=self.status_of(m),
            model_version=m.model_version,
            model_type=None if bundle is None else bundle.model_type,
            runtime=None if bundle is None else bundle.model.runtime,
            single_row_runtime=None if bundle is None else bundle.model.single_row_runtime,
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
            capacity=capacity_view(self.capacity(m.model_version)),
            retrain_preparing=self.retrainer.preparing,
            estimated_accuracy=None if est is None else est.accuracy,
            estimated_samples=0 if est is None else est.samples,
            calibration_rows=0 if est is None else est.calibration_rows,
            quality=None if self.quality is None else self.quality.last,
            trial_kind=None if trial is None else trial.kind,
            trial_version=None if trial is None else trial.bundle.version,
        )
