"""Authenticated loop routes: check, retrain, models, promote, events."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from litestar import get, post
from litestar.datastructures import State
from litestar.params import Parameter

from continual.bootstrap import Services
from continual.core.types import RetrainResult
from continual.services.monitor import CheckResult
from continual.web.schemas import PromoteRequest, RetrainRequest
from continual.web.security import PROTECTED, error_responses
from continual.web.views import (
    EventView,
    ModelsView,
    ModelVersion,
    event_view,
    model_version,
    models_view,
)


@post(
    "/check",
    status_code=200,
    tags=["loop"],
    summary="Run the check now; a check that retrains answers with the verdict",
    responses=error_responses(401),
    **PROTECTED,
)
async def check(state: State) -> CheckResult:
    """The same function the scheduler runs."""
    svc: Services = state.services
    return await svc.monitor.check("api")


@post(
    "/retrain",
    status_code=200,
    tags=["loop"],
    summary="Train a challenger now and return the gate's verdict",
    responses=error_responses(400, 401, 409, 422, 503),
    **PROTECTED,
)
async def retrain(state: State, data: RetrainRequest | None = None) -> RetrainResult:
    """409 while a retrain runs; 422 when there is too little data; 503 when MLflow is down."""
    svc: Services = state.services
    reason = data.reason if data is not None else "manual retrain"
    return await svc.retrainer.retrain(f"api: {reason}")


@get(
    "/models",
    tags=["models"],
    summary="Versions with metrics and status",
    responses=error_responses(401),
    **PROTECTED,
)
async def models(state: State) -> ModelsView:
    """Newest first, with the served periods (audit trail)."""
    svc: Services = state.services
    versions = await asyncio.to_thread(svc.reads.versions)
    served = await asyncio.to_thread(svc.reads.served_periods)
    return models_view(versions, served)


@post(
    "/models/{version:str}/promote",
    status_code=200,
    tags=["models"],
    summary="Make a version the champion (roll back or forward)",
    responses=error_responses(400, 401, 404, 422, 503),
    **PROTECTED,
)
async def promote(
    state: State,
    version: Annotated[str, Parameter(max_length=32)],
    data: PromoteRequest | None = None,
) -> ModelVersion:
    """Verified, committed, swapped; MLflow's alias follows."""
    svc: Services = state.services
    reason = data.reason if data is not None else "manual promotion"
    return model_version(await svc.registry.promote(version, reason, kind="rollback"))


@get(
    "/events",
    tags=["loop"],
    summary="Checks, retrains, promotions, rejections, alerts: newest first",
    responses=error_responses(400, 401),
    **PROTECTED,
)
async def events(
    state: State,
    kind: Annotated[str | None, Parameter(max_length=32, required=False)] = None,
    limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Parameter(ge=1, required=False)] = None,
) -> list[EventView]:
    """Page backwards with `before` (an event id)."""
    svc: Services = state.services
    found = await asyncio.to_thread(svc.reads.events, limit, kind, before)
    return [event_view(e) for e in found]


ROUTES: list[Any] = [check, retrain, models, promote, events]
