"""``create_app(settings)``: the one process, REST API (and dashboard), jobs in the lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from litestar import Litestar
from litestar.types import ASGIApp, Receive, Scope, Send

from continual.adapters import heap, models
from continual.bootstrap import Services, bootstrap
from continual.core.clock import Clock
from continual.jobs import start_jobs
from continual.services.worker import Worker
from continual.settings import Settings
from continual.web.api import create_api, front

log = structlog.get_logger("continual")


class ContinualApp:
    """The ASGI application: routes HTTP to the API (and the dashboard)."""

    def __init__(self, services: Services, api: Litestar, root: ASGIApp | None = None) -> None:
        self.services = services
        self.api = api
        # what serves: the API, or the dashboard's dispatcher in front of it (NiceGUI finds
        # the uvicorn server by following `.app` attributes down to its shell)
        self.app: ASGIApp = root or api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def create_app(
    settings: Settings, clock: Clock | None = None, worker: Worker | None = None
) -> ContinualApp:
    """Wire the services and build the ASGI app; nothing starts until the lifespan runs."""
    services = bootstrap(settings, clock, worker)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # one BLAS / OpenMP thread: two on a busy 2-core box slowed batch predictions
        # 5-67x, and single HistGradientBoosting predictions far more
        limits = models.one_thread()
        # request bodies and batch arrays reuse the heap, which stays bounded (adapters/heap)
        heap.fix_thresholds()
        await services.start()
        scheduler = start_jobs(services)
        gc.freeze()  # start-up's objects, as after a model swap (services/holder.py)
        if services.api_key_file is not None:
            log.info("api_key_generated", where=str(services.api_key_file))
        log.info(
            "started",
            data_dir=str(settings.data_dir),
            model=services.holder.current.version if services.holder.current else None,
        )
        try:
            yield
        finally:
            app.state.shutting_down = True
            scheduler.shutdown(wait=False)
            await services.stop()
            limits.restore_original_limits()
            log.info("stopped")

    if not settings.dashboard_enabled:
        api = create_api(services, lifespan=[lifespan])
        return ContinualApp(services, api, front(services, api))
    from continual.ui.mount import Dashboard  # NiceGUI is imported only with the dashboard on

    dashboard = Dashboard(services)
    api = create_api(services, lifespan=[lifespan, dashboard.lifespan])
    return ContinualApp(services, api, dashboard.dispatcher(front(services, api)))
