"""APScheduler wiring only: each job calls one service function.

- ``continual-lease``: the lease heartbeat, every third of ``CONTINUAL_LEASE_TTL_SECONDS``:
  the holder renews its leases (the check's, and a running retrain's), every other
  replica tries to take the check lease, which it gets once its holder stopped renewing.
- ``continual-check``: the check, fired on every replica at the same instants (multiples
  of the interval, wall clock); only the check lease's holder runs it, once per interval
  (its slot), so exactly one replica checks and retrains at a time.
- ``continual-flush``: writes buffered prediction logs in batches.
- ``continual-sync``: picks up a champion promoted by another replica within seconds,
  and the trial (shadow or canary) the database names.
- ``continual-shadow``: predicts the queued requests with a challenger in shadow, in
  batches, off the request path.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from continual.bootstrap import Services

log = structlog.get_logger("continual.jobs")
CHECK_LEASE = "check"


async def run_check(svc: Services) -> None:
    """The scheduled check: take the lease, run the same function as ``POST /check``."""
    s = svc.settings
    now = svc.clock.now()
    svc.monitor.next_check_at = now + s.check_interval_seconds
    structlog.contextvars.bind_contextvars(job="check")
    try:
        if not await asyncio.to_thread(svc.leases.acquire, CHECK_LEASE):
            log.debug("check_skipped", reason="another replica holds the lease")
            return
        # the fire time's interval: a fire that runs up to 0.9 interval late (a busy event
        # loop) still counts for its own interval, one up to 0.1 early too
        slot = math.floor(now / s.check_interval_seconds + 0.1)
        if not await asyncio.to_thread(svc.leases.claim_slot, CHECK_LEASE, slot):
            log.info("check_skipped", reason="this interval was checked already", slot=slot)
            return
        log.info("scheduled_check", slot=slot, holder=s.replica_id)
        result = await svc.monitor.check("scheduler")
        await svc.alerts.heartbeat(result.decision, result.accuracy)
        if svc.registry.alias_in_sync is False:
            await svc.registry.reconcile_alias()
    except Exception as exc:  # noqa: BLE001 - a job boundary: log, record, keep the scheduler alive
        log.error("check_job_failed", error=type(exc).__name__, message=str(exc)[:300])
        await svc.alerts.emit("check_failed", f"scheduled check failed: {type(exc).__name__}", {})
    finally:
        structlog.contextvars.unbind_contextvars("job")


async def heartbeat(svc: Services) -> None:
    """Renew this replica's leases; try to take the check lease if it is free."""
    try:
        await asyncio.to_thread(svc.leases.heartbeat)
    except Exception as exc:  # noqa: BLE001 - a job boundary; the next beat tries again
        log.error("lease_heartbeat_failed", error=type(exc).__name__)


def first_slot(now: float, interval: float) -> datetime:
    """The next multiple of ``interval`` after ``now``: every replica fires together."""
    return datetime.fromtimestamp((math.floor(now / interval) + 1) * interval, tz=UTC)


async def flush_predictions(svc: Services) -> None:
    """Write buffered predictions off the event loop."""
    try:
        await asyncio.to_thread(svc.log.flush)
    except Exception as exc:  # noqa: BLE001 - a job boundary; the rows stay buffered for the next try
        log.error("prediction_flush_failed", error=type(exc).__name__, pending=len(svc.log))


async def sync_champion(svc: Services) -> None:
    """Load the champion the database names if it differs from the one in memory."""
    try:
        bundle = await svc.registry.load_champion()
        if bundle is not None:
            svc.ready_reason = ""
            await svc.trials.restore()
    except Exception as exc:  # noqa: BLE001 - a job boundary; the current champion keeps serving
        log.error("champion_sync_failed", error=type(exc).__name__)


async def run_shadow(svc: Services) -> None:
    """Score the queued requests with the shadow, off the event loop."""
    if not len(svc.shadow):
        return
    try:
        await asyncio.to_thread(svc.shadow.drain)
    except Exception as exc:  # noqa: BLE001 - a job boundary; the champion's answers are unaffected
        log.error("shadow_drain_failed", error=type(exc).__name__)


def start_jobs(svc: Services) -> AsyncIOScheduler:
    """Create and start the scheduler on the running event loop."""
    s = svc.settings
    scheduler = AsyncIOScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
    )
    scheduler.add_job(
        flush_predictions,
        "interval",
        seconds=s.prediction_flush_seconds,
        args=[svc],
        id="continual-flush",
    )
    scheduler.add_job(
        run_shadow,
        "interval",
        seconds=s.prediction_flush_seconds,
        args=[svc],
        id="continual-shadow",
    )
    scheduler.add_job(
        sync_champion, "interval", seconds=s.model_sync_seconds, args=[svc], id="continual-sync"
    )
    scheduler.add_job(
        heartbeat,
        "interval",
        seconds=svc.leases.renew_seconds,
        args=[svc],
        id="continual-lease",
        next_run_time=datetime.now(tz=UTC),
    )
    if s.scheduler_enabled:
        svc.leases.want(CHECK_LEASE)
        start = first_slot(svc.clock.now(), s.check_interval_seconds)
        scheduler.add_job(
            run_check,
            "interval",
            seconds=s.check_interval_seconds,
            start_date=start,
            args=[svc],
            id="continual-check",
        )
        svc.monitor.next_check_at = start.timestamp()
    scheduler.start()
    return scheduler
