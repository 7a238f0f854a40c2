"""Authenticated loop routes: check, retrain, models, promote, events."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import get, post
from litestar.datastructures import State
from litestar.params import Parameter

from continual.bootstrap import Services
from continual.core.types import Event, ModelRecord, RetrainResult, ServedPeriod
from continual.services.monitor import CheckResult
from continual.web.schemas import PromoteRequest, RetrainRequest
from continual.web.security import PROTECTED, error_responses


class ModelsView(msgspec.Struct):
    """Every version with metrics and status, and which served when."""

    champion: str | None
    versions: list[ModelRecord]
    served: list[ServedPeriod]


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
    versions = await asyncio.to_thread(svc.store.versions)
    served = await asyncio.to_thread(svc.store.served_periods)
    champion = next((v.version for v in versions if v.status == "champion"), None)
    return ModelsView(champion, versions, served)


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
) -> ModelRecord:
    """Verified, committed, swapped; MLflow's alias follows."""
    svc: Services = state.services
    reason = data.reason if data is not None else "manual promotion"
    return await svc.registry.promote(version, reason, kind="rollback")


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
) -> list[Event]:
    """Page backwards with `before` (an event id)."""
    svc: Services = state.services
    return await asyncio.to_thread(svc.store.events, limit, kind, before)


ROUTES: list[Any] = [check, retrain, models, promote, events]
