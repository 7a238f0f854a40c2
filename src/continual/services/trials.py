"""Trials: a challenger in shadow or as a canary, started, judged by the check, ended.

The trial is kept in memory on the holder (``holder.trial``, read once per request) and
in the database (``meta['trial']``), so a restart or another replica serves the same
one. The check judges it on live evidence (``core.trial``): a shadow that beats the
champion on the same rows is promoted, with the evidence in the event; a canary that
falls behind is ended, with an alert. One call ends either; promoting any version ends it.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import msgspec
import structlog

from continual.core.clock import Clock, iso
from continual.core.errors import Conflict, InvalidInput, NotFound
from continual.core.ports import MetaPort, RowsPort, ShadowsPort, VersionsPort
from continual.core.trial import Evidence, canary_verdict, shadow_verdict
from continual.services.alerts import Alerts
from continual.services.holder import ModelHolder, Trial
from continual.services.promote import Registry
from continual.services.shadow import ShadowQueue
from continual.settings import Settings

log = structlog.get_logger("continual.trials")
META_KEY = "trial"
Kind = Literal["shadow", "canary"]


class Stored(msgspec.Struct, frozen=True):
    """The trial as ``meta['trial']`` keeps it."""

    kind: Kind
    version: str
    percent: float
    started_at: float
    start_row: int


class TrialView(msgspec.Struct, frozen=True, kw_only=True):
    """What ``GET /trial`` and the trial routes answer."""

    kind: Kind | None
    version: str | None = None
    champion_version: str | None = None
    percent: float | None = None
    started_at: str | None = None
    evidence: Evidence | None = None
    shadow_dropped: int = 0


class TrialOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What the check did about the trial."""

    kind: Kind
    version: str
    action: str  # wait, promote, end
    evidence: Evidence


_encode = msgspec.json.encode
_decode = msgspec.json.Decoder(Stored).decode


class TrialService:
    """Starts, ends and judges the one trial at a time."""

    def __init__(
        self,
        meta: MetaPort,
        versions: VersionsPort,
        rows: RowsPort,
        shadows: ShadowsPort,
        queue: ShadowQueue,
        holder: ModelHolder,
        registry: Registry,
        alerts: Alerts,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self.meta = meta
        self.versions = versions
        self.rows = rows
        self.shadows = shadows
        self.queue = queue
        self.holder = holder
        self.registry = registry
        self.alerts = alerts
        self.clock = clock
        self.settings = settings
        self._lock = asyncio.Lock()
        registry.on_promote = self._promoted

    async def start(self, kind: Kind, version: str, percent: float | None = None) -> TrialView:
        """Put ``version`` in shadow or make it a canary (replacing any trial)."""
        share = self.settings.canary_percent if percent is None else percent
        if not 0.0 < share <= 100.0:
            raise InvalidInput("percent: must be in (0, 100]", {"field": "percent"})
        async with self._lock:
            record = await asyncio.to_thread(self.versions.version, version)
            if record is None:
                raise NotFound(f"model version {version!r} is not known", {"version": version})
            champion = self.holder.current
            if champion is None:
                raise Conflict("no champion yet to compare with", {"status": "no_model"})
            if champion.version == version:
                raise Conflict(f"version {version} is the champion", {"version": version})
            schema = await asyncio.to_thread(self.meta.get_schema)
            assert schema is not None  # a champion means a schema
            bundle = await self.registry.bundle(record, schema)
            _lo, hi = await asyncio.to_thread(self.rows.row_id_bounds)
            trial = Trial(kind, bundle, share if kind == "canary" else 0.0, self.clock.now(), hi)
            stored = Stored(kind, version, trial.percent, trial.started_at, hi)
            await asyncio.to_thread(self.meta.set_meta, META_KEY, _encode(stored).decode())
            self.holder.trial = trial
        what = "in shadow" if kind == "shadow" else f"a canary for {share:g} % of traffic"
        await self.alerts.emit(
            f"{kind}_started",
            f"version {version} is {what} beside champion {champion.version}",
            {"version": version, "champion": champion.version, "percent": trial.percent},
        )
        return await asyncio.to_thread(self.view)

    async def end(self, reason: str, kind: str = "trial_ended") -> TrialView:
        """End the trial (404 when there is none); the champion answers everything."""
        trial = self.holder.trial
        if trial is None:
            raise NotFound("no shadow or canary is running", None)
        ev = await asyncio.to_thread(self.evidence, trial)
        await self._clear()
        await self.alerts.emit(
            kind,
            f"{trial.kind} of version {trial.bundle.version} ended: {reason}",
            {
                "version": trial.bundle.version,
                "kind": trial.kind,
                "reason": reason,
                "evidence": msgspec.to_builtins(ev),
            },
        )
        return TrialView(kind=None, evidence=ev)

    async def promote(self, reason: str) -> TrialView:
        """Make the trial's version the champion (404 when there is none)."""
        trial = self.holder.trial
        if trial is None:
            raise NotFound("no shadow or canary is running", None)
        ev = await asyncio.to_thread(self.evidence, trial)
        await self.registry.promote(
            trial.bundle.version, reason, kind="promoted", evidence=msgspec.to_builtins(ev)
        )
        return TrialView(kind=None, evidence=ev)

    async def _clear(self) -> None:
        # the record first: a sync reading it meanwhile must not bring the trial back
        async with self._lock:
            await asyncio.to_thread(self.meta.set_meta, META_KEY, "")
            self.holder.trial = None

    async def _promoted(self, version: str) -> None:
        """Any promotion ends the trial: its evidence was against the old champion."""
        if self.holder.trial is not None:
            log.info("trial_closed_by_promotion", version=version)
            await self._clear()

    def evidence(self, trial: Trial) -> Evidence:
        """The trial's live evidence so far (blocking; O(window))."""
        return self._verdict(trial)[1]

    def _verdict(self, trial: Trial) -> tuple[str, Evidence]:
        s = self.settings
        if trial.kind == "shadow":
            self.queue.drain()
            pairs = self.shadows.shadow_window(trial.bundle.version, s.eval_window)
            return shadow_verdict(pairs, s.min_samples, s.min_improvement)
        champion = self.holder.current
        mine = self.rows.scored_window_ids(trial.bundle.version, trial.start_row, s.eval_window)
        theirs = (
            []
            if champion is None
            else self.rows.scored_window_ids(
                champion.version, max(champion.since_row_id, trial.start_row), s.eval_window
            )
        )
        return canary_verdict(
            [c for _, c in mine], [c for _, c in theirs], s.min_samples, s.min_improvement
        )

    async def judge(self) -> TrialOutcome | None:
        """The check's part: promote a shadow that wins, end a canary that falls behind."""
        trial = self.holder.trial
        if trial is None:
            return None
        action, ev = await asyncio.to_thread(self._verdict, trial)
        version = trial.bundle.version
        if action == "promote":
            reason = (
                f"in shadow, right on {ev.accuracy:.3f} of {ev.rows} live rows against the "
                f"champion's {ev.champion_accuracy:.3f} on the same rows"
            )
            await self.registry.promote(
                version, reason, kind="promoted", evidence=msgspec.to_builtins(ev)
            )
        elif action == "end" and trial.kind == "canary":
            await self.end(
                f"live accuracy {ev.accuracy:.3f} on {ev.rows} rows is behind the champion's "
                f"{ev.champion_accuracy:.3f} on {ev.champion_rows}",
                kind="canary_ended",
            )
        elif action == "end":
            await self.end(
                f"right on {ev.accuracy:.3f} of {ev.rows} live rows, behind the champion's "
                f"{ev.champion_accuracy:.3f} on the same rows",
                kind="shadow_ended",
            )
        else:
            action = "wait"
        log.info("trial_judged", kind=trial.kind, version=version, action=action, rows=ev.rows)
        return TrialOutcome(kind=trial.kind, version=version, action=action, evidence=ev)

    async def consider(self, version: str, challenger: float, champion: float | None) -> None:
        """Policy: a rejected challenger close to the gate goes into shadow (if none runs)."""
        s = self.settings
        close = max(2 * s.min_improvement, 0.01)
        if (
            not s.auto_shadow
            or champion is None
            or self.holder.trial is not None
            or challenger < champion - close
        ):
            return
        try:
            await self.start("shadow", version)
        except (NotFound, Conflict) as exc:
            log.warning("auto_shadow_failed", version=version, error=exc.message)

    async def restore(self) -> None:
        """Serve the trial the database names (start-up and replica sync)."""
        if self._lock.locked():
            return  # a trial is being started or ended here: the next sync looks again
        async with self._lock:
            await self._restore()

    async def _restore(self) -> None:
        raw = await asyncio.to_thread(self.meta.get_meta, META_KEY)
        trial = self.holder.trial
        if not raw:
            if trial is not None:
                self.holder.trial = None
            return
        stored = _decode(raw)
        if (
            trial is not None
            and trial.bundle.version == stored.version
            and trial.started_at == stored.started_at
        ):
            return
        record = await asyncio.to_thread(self.versions.version, stored.version)
        schema = await asyncio.to_thread(self.meta.get_schema)
        if record is None or schema is None:
            return
        bundle = await self.registry.bundle(record, schema)
        self.holder.trial = Trial(
            stored.kind, bundle, stored.percent, stored.started_at, stored.start_row
        )

    def view(self) -> TrialView:
        """The running trial with its evidence (blocking; O(window))."""
        trial = self.holder.trial
        champion = self.holder.current
        if trial is None:
            return TrialView(kind=None, champion_version=champion.version if champion else None)
        return TrialView(
            kind=trial.kind,
            version=trial.bundle.version,
            champion_version=None if champion is None else champion.version,
            percent=trial.percent if trial.kind == "canary" else None,
            started_at=iso(trial.started_at),
            evidence=self.evidence(trial),
            shadow_dropped=self.queue.dropped,
        )
