"""The check: measure the champion, decide, and retrain when it is due.

Live accuracy is the champion's accuracy on the newest ``eval_window`` labelled rows
that arrived after it went live. The drift detector (``core.detect.change_point``) looks
four windows back over the same rows and locates where the error rate rose, so that the
retrain can judge its challenger on rows of the new concept only. Reading them is one
indexed query (test-then-train flags stored with each row): a check costs O(window),
not O(history).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import numpy as np
import structlog

from continual.core import drift
from continual.core.clock import Clock, iso
from continual.core.detect import ALARM_Z, change_point
from continual.core.errors import ContinualError
from continual.core.policy import CheckInputs, Verdict, decide
from continual.core.ports import EventsPort, MetaPort, RowsPort, VersionsPort
from continual.core.types import Capacity, CheckRecord, Decision, RetrainResult, ServiceStatus
from continual.services.alerts import Alerts
from continual.services.holder import ModelBundle, ModelHolder
from continual.services.retrain import RetrainService
from continual.settings import Settings

log = structlog.get_logger("continual.monitor")


class Measurement(msgspec.Struct, frozen=True):
    """The champion's live numbers."""

    model_version: str | None
    accuracy: float | None
    samples: int
    detector_fired: bool
    detector_at: int | None
    change_row_id: int | None = None
    detector_row_id: int | None = None  # the row where the fired detector put the change


# The detector looks further back than the accuracy window (still O(window), not
# O(history)): a mild rise in the error rate needs rows from before it to show.
DETECT_WINDOW_FACTOR = 4
# a change is declared at ALARM_Z (see core.detect), and located for the retrain at a
# lower bar once a retrain is due for another reason (the threshold, a refresh)
DETECT_Z = ALARM_Z
LOCATE_Z = 3.0
# the detector's z accounts for how few rows there are, so it may judge a young
# champion (promoted a few hundred rows ago) before the accuracy threshold can
DETECT_MIN_ROWS = 100


_decode_capacity = msgspec.json.Decoder(Capacity).decode


class CapacityView(msgspec.Struct, frozen=True, kw_only=True):
    """The capacity state as the API shows it (times in ISO 8601 UTC)."""

    version: str
    level: float
    samples: int
    best: float
    families: list[str]
    declared_at: str | None
    row_id: int
    drifted: list[str]
    backoff_seconds: float
    retry_at: str | None
    trigger: str


def capacity_view(cap: Capacity | None) -> CapacityView | None:
    """``cap`` for the API and the dashboard."""
    if cap is None:
        return None
    fields = msgspec.structs.asdict(cap)
    return CapacityView(
        **{**fields, "declared_at": iso(cap.declared_at), "retry_at": iso(cap.retry_at)}
    )


CAPACITY_MAX_BACKOFF = 7 * 24 * 3600.0


class Young(msgspec.Struct, frozen=True):
    """The champion's fit, if it was fitted on the rows since a located change."""

    change_row: int | None = None
    fit_rows: int | None = None
    rows_since_change: int = 0
    last_refresh_rows: int = 0


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
    capacity: CapacityView | None = None  # held when retraining could not beat the champion


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
    capacity: CapacityView | None = None
    runtime: str | None = None  # what computes the champion's probabilities: onnx, numpy, sklearn
    # a retrain waits for the tracking store (the first after start-up, MLflow's tables)
    retrain_preparing: bool = False


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
        self._references: dict[str, dict[str, Any]] = {}
        self._fits: dict[str, tuple[int, int] | None] = {}
        self.last_drift: drift.DriftReport | None = None
        self.last_check: CheckResult | None = None
        self.next_check_at: float | None = None
        self.decisions: dict[str, int] = {}
        self._lock = asyncio.Lock()

    def measure(self) -> Measurement:
        """Live accuracy of the champion over its window, and where its error rate rose
        (blocking; O(window))."""
        bundle = self.holder.current
        if bundle is None:
            return Measurement(None, None, 0, False, None)
        s = self.settings
        span = s.eval_window * DETECT_WINDOW_FACTOR
        pairs = self.rows.scored_window_ids(bundle.version, bundle.since_row_id, span)
        if len(pairs) < s.min_samples:
            pairs = self._rescored(bundle, span)
        flags = [c for _, c in pairs]
        recent = flags[-s.eval_window :]
        accuracy = sum(recent) / len(recent) if recent else None
        fired, at, change = False, None, None
        if len(recent) >= min(s.min_samples, DETECT_MIN_ROWS):
            k, z = change_point(flags)
            if k is not None and z >= DETECT_Z:
                fired, at = True, k
            if k is not None and z >= LOCATE_Z:
                change = pairs[k][0]
        row = None if at is None else pairs[at][0]
        return Measurement(bundle.version, accuracy, len(recent), fired, at, change, row)

    def _rescored(self, bundle: ModelBundle, n: int) -> list[tuple[int, bool]]:
        """(row id, correct) for the newest ``n`` labelled rows that arrived after the
        champion went live, each scored by the champion now.

        With late feedback a new champion's own predictions take the label delay to come
        back; the labels arriving meanwhile (of an older version's predictions) are of
        rows it has never seen either, and show at once whether it fits the current
        concept. On rows it served this equals the stored test-then-train flag (the model
        is deterministic). One query of the newest ``n`` rows: O(window)."""
        recent = self.rows.recent_rows(bundle.schema, n)
        raw = recent[int(np.searchsorted(recent.ids, bundle.since_row_id, side="right")) :]
        if not len(raw):
            return []
        predicted = bundle.model.labels_of(bundle.model.predict_rows(raw.x))
        return [(i, p == t) for i, p, t in zip(raw.ids.tolist(), predicted, raw.y, strict=True)]

    def _young(self, version: str | None, last_row_id: int) -> Young:
        """How the champion relates to the last located change (blocking; cached per
        version, plus one meta read)."""
        if version is None:
            return Young()
        if version not in self._fits:
            record = self.versions.version(version)
            params = {} if record is None else record.params
            raw_change, raw_rows = params.get("change_row", ""), params.get("n_samples", "")
            ok = raw_change.isdigit() and raw_rows.isdigit()
            self._fits[version] = (int(raw_change), int(raw_rows)) if ok else None
        fit = self._fits[version]
        if fit is None or self.meta.get_meta("refresh_saturated") == version:
            return Young()
        change, rows = fit
        since = last_row_id - change + 1
        last = 0
        raw = self.meta.get_meta("refresh") or ""
        asked_change, _, asked_rows = raw.partition(":")
        if asked_change == str(change) and asked_rows.isdigit():
            last = int(asked_rows)
        return Young(change, rows, since, last)

    def _reference(self, version: str) -> dict[str, Any]:
        """The drift reference kept with ``version`` (cached: it never changes)."""
        ref = self._references.get(version)
        if ref is None:
            ref = self.versions.reference(version)
            self._references[version] = ref
        return ref

    def data_drift(self) -> drift.DriftReport | None:
        """Per-feature drift of recent inputs against the champion's training data."""
        bundle = self.holder.current
        if bundle is None:
            return None
        ref = self._reference(bundle.version)
        recent = self.rows.recent_features(bundle.schema, self.settings.eval_window)
        if not len(recent) or not ref:
            return None
        return drift.compare(ref, recent)

    def status_of(self, m: Measurement) -> ServiceStatus:
        """``no_model``; ``collecting`` until the champion has scored ``min_samples``
        rows (nothing is known yet); then ``degraded`` (below threshold) or ``ok``."""
        if m.model_version is None:
            return "no_model"
        if m.accuracy is None or m.samples < self.settings.min_samples:
            return "collecting"
        if m.accuracy < self.settings.performance_threshold:
            return "degraded"
        return "ok"

    def categories(self) -> dict[str, list[str]]:
        """The categories of each categorical feature in the champion's training data,
        most frequent first (at most 50 each: the drift reference keeps those)."""
        bundle = self.holder.current
        if bundle is None:
            return {}
        ref = self._reference(bundle.version)
        out: dict[str, list[str]] = {}
        for name, spec in ref.get("features", {}).items():
            if spec.get("kind") == "categorical":
                props: dict[str, float] = spec.get("props", {})
                out[name] = sorted(props, key=lambda k: (-props[k], k))
        return out

    def capacity(self, version: str | None) -> Capacity | None:
        """The capacity state held for ``version`` (the champion), if any (blocking)."""
        raw = self.meta.get_meta("capacity")
        if not raw or version is None:
            return None
        try:
            cap = _decode_capacity(raw)
        except msgspec.DecodeError:
            return None
        return cap if cap.version == version else None

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
        lo, hi = await asyncio.to_thread(self.rows.row_id_bounds)
        last_retrain = await asyncio.to_thread(self.retrainer.last_retrain_at)
        young = await asyncio.to_thread(self._young, m.model_version, hi)
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
            await asyncio.to_thread(self.meta.set_meta, "capacity", "")
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
                cap = await self._after_retrain(verdict, retrain, m, cap, drifted, hi, now)
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
        )
        self.last_check = result
        return result

    async def _after_retrain(
        self,
        verdict: Verdict,
        result: RetrainResult,
        m: Measurement,
        cap: Capacity | None,
        drifted: list[str],
        hi: int,
        now: float,
    ) -> Capacity | None:
        """Declare, renew or clear the capacity state after a retrain the check started.

        A promotion clears it. A rejected challenger (of any retrain but a refresh, which
        only offers more rows of the same concept) means the pool could not beat the
        champion on recent data: from now on only a change starts a retrain (see
        ``core.policy.decide``). Declaring it is one event and one alert; a later
        rejection only renews it (a back-off that found nothing doubles)."""
        s = self.settings
        if verdict.trigger == "refresh" and not result.promoted and m.model_version is not None:
            # more rows of the same concept did not help: this champion has saturated, and
            # refitting it as its rows keep doubling would only register rejected versions
            await asyncio.to_thread(self.meta.set_meta, "refresh_saturated", m.model_version)
        if (
            result.promoted
            or m.model_version is None
            or verdict.trigger in ("", "first", "refresh")
        ):
            if cap is not None or result.promoted:
                await asyncio.to_thread(self.meta.set_meta, "capacity", "")
            return None
        level = m.accuracy if m.accuracy is not None else result.champion_accuracy or 0.0
        backoff = s.capacity_backoff_seconds
        if cap is not None and verdict.trigger == "backoff":
            backoff = min(CAPACITY_MAX_BACKOFF, cap.backoff_seconds * 2)
        families = [c.model_type for c in result.candidates] or [result.model_type]
        renewed = Capacity(
            version=m.model_version,
            level=round(level, 4),
            samples=m.samples,
            best=round(result.challenger_accuracy, 4),
            families=families,
            declared_at=now if cap is None else cap.declared_at,
            row_id=hi,
            drifted=drifted,
            backoff_seconds=backoff,
            retry_at=self.clock.now() + backoff,
            trigger=verdict.trigger,
        )
        await asyncio.to_thread(
            self.meta.set_meta, "capacity", msgspec.json.encode(renewed).decode()
        )
        if cap is None:
            n = len(families)
            best = f"best of {n} {'family' if n == 1 else 'families'} {renewed.best:.2f}"
            if level < s.performance_threshold:
                message = (
                    f"threshold {s.performance_threshold:.2f} not reachable on recent data: {best}"
                )
            else:
                message = f"retraining could not beat the champion ({level:.2f}): {best}"
            await self.alerts.emit(
                "at_capacity",
                message,
                {
                    "version": m.model_version,
                    "level": renewed.level,
                    "best": renewed.best,
                    "families": families,
                    "threshold": s.performance_threshold,
                    "trigger": verdict.trigger,
                    "retry_at": iso(renewed.retry_at),
                },
            )
        else:
            log.info("capacity_renewed", version=m.model_version, trigger=verdict.trigger)
        return renewed

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
        bundle = self.holder.current
        checks = self.events.checks(limit=1)
        last_retrain = self.retrainer.last_retrain_at()
        return ModelStatusView(
            status=self.status_of(m),
            model_version=m.model_version,
            model_type=None if bundle is None else bundle.model_type,
            runtime=None if bundle is None else bundle.model.runtime,
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
        )
