"""Unauthenticated routes: liveness, readiness and the model status."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Response, get
from litestar.datastructures import State

from continual.bootstrap import Services
from continual.core.errors import ContinualError
from continual.services.monitor import ModelStatusView
from continual.web.schemas import Health, Ready
from continual.web.security import error_responses

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # Prometheus text format 0.0.4


@get("/health", tags=["probes"], summary="Liveness: 200 while the process serves")
async def health() -> Health:
    """No dependency is checked: this is the framework floor."""
    return Health("ok")


@get(
    "/ready",
    tags=["probes"],
    summary="Readiness: the database answers and a model is loaded",
    responses=error_responses(503),
)
async def ready(state: State) -> Response[Ready]:
    """200 when ready, else 503 with the reason."""
    svc: Services = state.services
    if state.get("shutting_down"):
        return Response(Ready("not_ready", "shutting down"), status_code=503)
    try:
        await asyncio.to_thread(svc.ping)
    except ContinualError as exc:
        return Response(Ready("not_ready", exc.message), status_code=503)
    bundle = svc.holder.current
    if bundle is None:
        return Response(Ready("not_ready", "no model is loaded"), status_code=503)
    return Response(Ready("ready", None, bundle.version), status_code=200)


@get(
    "/model-status", tags=["loop"], summary="Champion, live accuracy, threshold, last check, drift"
)
async def model_status(state: State) -> ModelStatusView:
    """The loop's state as a user watches it."""
    svc: Services = state.services
    return await asyncio.to_thread(svc.monitor.status)


@get(
    "/metrics",
    tags=["probes"],
    summary="Prometheus metrics (text exposition format)",
    media_type=CONTENT_TYPE,
)
async def metrics(state: State) -> Response[bytes]:
    """HTTP metrics and the loop's own: accuracy, checks, retrains, alerts, champion info."""
    svc: Services = state.services
    body = await asyncio.to_thread(svc.render_metrics)
    return Response(body, media_type=CONTENT_TYPE)


ROUTES: list[Any] = [health, ready, model_status, metrics]
