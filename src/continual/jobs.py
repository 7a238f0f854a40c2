"""APScheduler wiring only: each job calls one service function.

- ``continual-check``: the check, on every replica, but only the holder of the database
  lease runs it, so exactly one replica checks and retrains at a time.
- ``continual-flush``: writes buffered prediction logs in batches.
- ``continual-sync``: picks up a champion promoted by another replica within seconds,
  and the trial (shadow or canary) the database names.
- ``continual-shadow``: predicts the queued requests with a challenger in shadow, in
  batches, off the request path.
"""

from __future__ import annotations

import asyncio

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from continual.bootstrap import Services

log = structlog.get_logger("continual.jobs")
CHECK_LEASE = "check"


async def run_check(svc: Services) -> None:
    """The scheduled check: take the lease, run the same function as ``POST /check``."""
    s = svc.settings
    svc.monitor.next_check_at = svc.clock.now() + s.check_interval_seconds
    structlog.contextvars.bind_contextvars(job="check")
    try:
        ttl = max(3 * s.check_interval_seconds, 60.0)
        got = await asyncio.to_thread(svc.take_lease, CHECK_LEASE, ttl)
        if not got:
            log.debug("check_skipped", reason="another replica holds the lease")
            return
        result = await svc.monitor.check("scheduler")
        await svc.alerts.heartbeat(result.decision, result.accuracy)
        if svc.registry.alias_in_sync is False:
            await svc.registry.reconcile_alias()
    except Exception as exc:  # noqa: BLE001 - a job boundary: log, record, keep the scheduler alive
        log.error("check_job_failed", error=type(exc).__name__, message=str(exc)[:300])
        await svc.alerts.emit("check_failed", f"scheduled check failed: {type(exc).__name__}", {})
    finally:
        structlog.contextvars.unbind_contextvars("job")


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
    if s.scheduler_enabled:
        scheduler.add_job(
            run_check,
            "interval",
            seconds=s.check_interval_seconds,
            args=[svc],
            id="continual-check",
        )
        svc.monitor.next_check_at = svc.clock.now() + s.check_interval_seconds
    scheduler.start()
    return scheduler
