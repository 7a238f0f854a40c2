"""Trial routes: put a challenger in shadow or make it a canary, watch, end or promote."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from litestar import get, post
from litestar.datastructures import State
from litestar.params import Parameter

from continual.bootstrap import Services
from continual.services.trials import TrialView
from continual.web.schemas import CanaryRequest
from continual.web.security import PROTECTED, error_responses

Version = Annotated[str, Parameter(max_length=32)]


@post(
    "/models/{version:str}/shadow",
    status_code=200,
    tags=["models"],
    summary="Run a version beside the champion on live traffic, unseen by callers",
    responses=error_responses(400, 401, 404, 409, 503),
    **PROTECTED,
)
async def shadow(state: State, version: Version) -> TrialView:
    """It predicts every request off the request path; feedback scores it on the same rows."""
    svc: Services = state.services
    return await svc.trials.start("shadow", version)


@post(
    "/models/{version:str}/canary",
    status_code=200,
    tags=["models"],
    summary="Let a version answer a share of traffic, sticky by X-Continual-Key",
    responses=error_responses(400, 401, 404, 409, 422, 503),
    **PROTECTED,
)
async def canary(state: State, version: Version, data: CanaryRequest | None = None) -> TrialView:
    """The check ends it on its own if its live accuracy falls behind the champion's."""
    svc: Services = state.services
    return await svc.trials.start("canary", version, None if data is None else data.percent)


@get(
    "/trial",
    tags=["models"],
    summary="The shadow or canary running now, with its live evidence",
    responses=error_responses(401),
    **PROTECTED,
)
async def trial(state: State) -> TrialView:
    """`kind` is null when none runs."""
    svc: Services = state.services
    return await asyncio.to_thread(svc.trials.view)


@post(
    "/trial/end",
    status_code=200,
    tags=["models"],
    summary="End the shadow or canary: the champion answers everything",
    responses=error_responses(400, 401, 404),
    **PROTECTED,
)
async def end_trial(state: State) -> TrialView:
    """404 when none runs."""
    svc: Services = state.services
    return await svc.trials.end("ended by hand")


@post(
    "/trial/promote",
    status_code=200,
    tags=["models"],
    summary="Make the shadow or canary the champion",
    responses=error_responses(400, 401, 404, 503),
    **PROTECTED,
)
async def promote_trial(state: State) -> TrialView:
    """Its live evidence goes into the promotion's event; 404 when none runs."""
    svc: Services = state.services
    return await svc.trials.promote("promoted by hand from its trial")


ROUTES: list[Any] = [shadow, canary, trial, end_trial, promote_trial]
