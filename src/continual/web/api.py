"""The Litestar application: routes, errors, auth, OpenAPI."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, cast

from litestar import Litestar, Response, route
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from continual import __version__
from continual.bootstrap import Services
from continual.web import admin, public, serve, trials, v2
from continual.web.errors import EXCEPTION_HANDLERS
from continual.web.front import Front
from continual.web.openapi_live import LiveDocument, LiveJson, LiveSwagger
from continual.web.ratelimit import Gate, limits_of, rate_limit

Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]


def allow_handlers(handlers: list[Any]) -> list[HTTPRouteHandler]:
    """An explicit ``OPTIONS`` for each path served by several handlers (``/data``).

    Litestar's own OPTIONS answer lists only the methods of the first handler registered
    for a path (``Allow: OPTIONS, POST`` on ``/data``, which also has GET): litestar#4169.
    Remove this when Litestar fixes it (tests/test_api.py checks the header either way).
    """
    methods: dict[str, set[str]] = {}
    for handler in handlers:
        if isinstance(handler, HTTPRouteHandler):
            for path in handler.paths:
                methods.setdefault(path, set()).update(handler.http_methods)
    out: list[HTTPRouteHandler] = []
    for path, found in methods.items():
        if len(found) < 2 or "OPTIONS" in found:
            continue
        allow = ", ".join(sorted({*found, "OPTIONS"}))
        out.append(route(path, http_method="OPTIONS", include_in_schema=False)(_options(allow)))
    return out


def _options(allow: str) -> Callable[[], Any]:
    async def options() -> Response[None]:
        return Response(None, status_code=204, headers={"Allow": allow})

    return options


def create_api(
    services: Services,
    lifespan: list[Lifespan] | None = None,
    extra_routes: list[Any] | None = None,
) -> Litestar:
    """Build the REST API over ``services``."""
    live = LiveDocument(services.settings, services.ingest.schema)
    openapi = OpenAPIConfig(
        title="continual",
        version=__version__,
        description="Keeps a tabular classification model accurate while its data changes.",
        path="/schema",
        render_plugins=[LiveSwagger(live), LiveJson(live)],
        components=Components(
            security_schemes={
                "BearerAuth": SecurityScheme(
                    type="http", scheme="bearer", description="the API key"
                )
            }
        ),
    )
    handlers = [
        *public.ROUTES,
        *serve.ROUTES,
        *admin.ROUTES,
        *trials.ROUTES,
        *v2.ROUTES,
        *(extra_routes or []),
    ]
    gate = Gate(limits_of(services.settings), services.api_key.value.encode())
    app = Litestar(
        # the OPTIONS handlers first: Litestar keeps its own when one was made already
        route_handlers=[*allow_handlers(handlers), *handlers],
        exception_handlers=cast(Any, EXCEPTION_HANDLERS),
        openapi_config=openapi,
        middleware=[rate_limit(gate)],
        lifespan=lifespan or [],
        request_max_body_size=services.settings.max_body_bytes,
        debug=False,
        logging_config=None,
    )
    app.state.services = services
    app.state.api_key_bytes = services.api_key.value.encode()
    app.state.shutting_down = False
    app.state.gate = gate
    return app


def front(services: Services, api: Litestar) -> Front:
    """The API behind its one request layer (``web.front``): what the server runs."""
    return Front(
        api,
        services,
        api.state.gate,
        {"/predict": ("/predict", serve.predict_lane)},
        (("/v2/models/", "/infer", "/v2/models/{name}/infer", v2.infer_lane),),
    )
