"""The champion "at capacity": retraining could not beat it, so from then on only a change
in the data starts a retrain (see ``core.policy.decide``). Declared once (an event and an
alert), renewed quietly, cleared by a promotion or by the champion recovering."""

from __future__ import annotations

import asyncio

import msgspec
import structlog

from continual.core.clock import Clock, iso
from continual.core.policy import Verdict
from continual.core.ports import MetaPort
from continual.core.types import Capacity, RetrainResult
from continual.services.alerts import Alerts
from continual.services.measure import Measurement
from continual.settings import Settings

log = structlog.get_logger("continual.monitor")

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


class CapacityKeeper:
    """Holds the capacity state in ``meta`` (one JSON fact shared by every replica)."""

    def __init__(self, meta: MetaPort, alerts: Alerts, clock: Clock, settings: Settings) -> None:
        self.meta = meta
        self.alerts = alerts
        self.clock = clock
        self.settings = settings

    def held(self, version: str | None) -> Capacity | None:
        """The capacity state held for ``version`` (the champion), if any (blocking)."""
        raw = self.meta.get_meta("capacity")
        if not raw or version is None:
            return None
        try:
            cap = _decode_capacity(raw)
        except msgspec.DecodeError:
            return None
        return cap if cap.version == version else None

    async def clear(self) -> None:
        """Forget the state (the champion measures above the threshold again)."""
        await asyncio.to_thread(self.meta.set_meta, "capacity", "")

    async def after_retrain(
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
