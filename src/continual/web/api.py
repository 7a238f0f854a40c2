"""The Litestar application: routes, errors, auth, OpenAPI."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, cast

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from continual import __version__
from continual.bootstrap import Services
from continual.web import admin, public, serve
from continual.web.errors import EXCEPTION_HANDLERS
from continual.web.middleware import request_context
from continual.web.openapi import CorrectedJson
from continual.web.ratelimit import limits_of, rate_limit

Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]


def create_api(
    services: Services,
    lifespan: list[Lifespan] | None = None,
    extra_routes: list[Any] | None = None,
) -> Litestar:
    """Build the REST API over ``services``."""
    openapi = OpenAPIConfig(
        title="continual",
        version=__version__,
        description="Keeps a tabular classification model accurate while its data changes.",
        path="/schema",
        render_plugins=[SwaggerRenderPlugin(), CorrectedJson(services.settings)],
        components=Components(
            security_schemes={
                "BearerAuth": SecurityScheme(
                    type="http", scheme="bearer", description="the API key"
                )
            }
        ),
    )
    app = Litestar(
        route_handlers=[*public.ROUTES, *serve.ROUTES, *admin.ROUTES, *(extra_routes or [])],
        exception_handlers=cast(Any, EXCEPTION_HANDLERS),
        openapi_config=openapi,
        middleware=[
            request_context(services.metrics),
            rate_limit(limits_of(services.settings)),
        ],
        lifespan=lifespan or [],
        request_max_body_size=services.settings.max_body_bytes,
        debug=False,
        logging_config=None,
    )
    app.state.services = services
    app.state.api_key_bytes = services.api_key.value.encode()
    app.state.shutting_down = False
    return app
