"""Mounting the dashboard: a root dispatcher, a private FastAPI shell, NiceGUI set up once.

::

    ContinualApp.app = DashboardDispatcher
      ├─ http + websocket under /dashboard ─> FastAPI shell (ui.run_with mounts NiceGUI there,
      │                                       its socket.io endpoint included)
      └─ everything else, lifespan included ─> Litestar, whose lifespan enters the shell's
                                              (so NiceGUI's start-up and shut-down hooks run)

Why it is built this way (each point was found by the prototype):

- NiceGUI keeps one global app per process and ``ui.run_with`` works once per process,
  so the pages, the session gate and the shell are set up once, under a lock, by the
  first ``Dashboard``; every later app reuses that shell. Per-app state (services,
  password, stream) rides in the ASGI scope, which the dispatcher fills. This module's
  ``_PROCESS`` is therefore process-wide state, the one exception to "no globals".
- Only one app's dashboard can run at a time in a process (one NiceGUI event loop); the
  lifespan refuses a second one.
- ``NICEGUI_STORAGE_PATH`` is read once, at import, so the storage directory is pinned at
  each start by setting ``Storage.path`` and rebinding the general storage.
- NiceGUI's shut-down tears its thread pool down and appends shut-down handlers at every
  start: a restart calls ``run.reset()`` and restores the handler list.
- The session gate is added before ``ui.run_with`` so it runs innermost, after NiceGUI's
  session and request tracking, and can read ``app.storage.user``.
- Under a mount the gate compares the prefix-free route path, and its redirects add the
  prefix (``root_path``) themselves: NiceGUI does not add it to a ``Location``.
- The dispatcher exposes the shell as ``.app``: ``run_with``'s lifespan finds the uvicorn
  server by following ``.app`` attributes from the served app down to its shell.
- NiceGUI behaves differently when ``PYTEST_CURRENT_TEST`` is set; tests start the server
  without it.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

from fastapi import FastAPI
from litestar import Litestar
from litestar.types import ASGIApp, Receive, Scope, Send
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from continual.bootstrap import Services
from continual.ui import auth
from continual.ui.context import SCOPE_KEY, DashboardContext, context_of

MOUNT_PATH = "/dashboard"
PUBLIC_ROUTES = frozenset(
    {auth.LOGIN_PATH, "/favicon.ico"}
)  # prefix-free paths open without a session
_ShellApp = Callable[[Any, Any, Any], Awaitable[None]]


@dataclass
class _ProcessState:
    """What NiceGUI makes process-wide: the one shell, and whether it has run before."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    shell: FastAPI | None = None
    started_before: bool = False


_PROCESS = _ProcessState()


def route_path(scope: Any) -> str:
    """The path below ``root_path`` (Starlette keeps the full path in ``scope["path"]``)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


class SessionGate(BaseHTTPMiddleware):
    """Sends every dashboard page but the public ones to the login page without a session."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        """Pass signed-in browsers, NiceGUI's own assets and the login page; redirect the rest."""
        from nicegui import app

        route = route_path(request.scope)
        if route.startswith("/_nicegui") or route in PUBLIC_ROUTES:
            return await call_next(request)
        if context_of(request.scope).signed_in(app.storage.user):
            return await call_next(request)
        query = request.url.query
        target = quote(route + (f"?{query}" if query else ""), safe="/")
        root = request.scope.get("root_path", "")
        return RedirectResponse(f"{root}/login?redirect_to={target}", status_code=303)


def _shell_once(cookie_key: str, session_hours: float) -> FastAPI:
    """Set NiceGUI up exactly once per process and return the shared FastAPI shell."""
    with _PROCESS.lock:
        if _PROCESS.shell is None:
            from nicegui import app, run, ui

            from continual.ui.pages import register

            # the dashboard never uses cpu_bound; should anything, do not fork a threaded process
            run.process_pool_start_method = "spawn"
            register()
            app.add_middleware(SessionGate)
            shell = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
            ui.run_with(
                shell,
                mount_path=MOUNT_PATH,
                storage_secret=cookie_key,
                session_middleware_kwargs={
                    "session_cookie": "continual_dashboard",
                    "path": MOUNT_PATH,
                    "max_age": max(60, round(session_hours * 3600)),
                    "same_site": "lax",
                },
                title="continual",
                favicon="🔁",
                show_welcome_message=False,
                reconnect_timeout=5.0,
            )
            _PROCESS.shell = shell
        return _PROCESS.shell


def _pin_storage(directory: Path) -> None:
    """Point NiceGUI's file storage at ``directory`` (process-wide, set at each start).

    ``NICEGUI_STORAGE_PATH`` is only read at ``import nicegui``, into ``Storage.path``, and
    the general storage is bound to its file then; so the class attribute is set (every
    user storage made later uses it) and the general storage is made anew.
    """
    from nicegui import app
    from nicegui.storage import GENERAL_ID, Storage

    directory.mkdir(parents=True, exist_ok=True)  # NiceGUI's own mkdir has no parents=True
    directory.chmod(0o700)  # the session files are as private as the API key next door
    Storage.path = directory.resolve()
    app.storage._users.clear()  # they belong to a previous app's directory
    general = Storage._create_persistent_dict(GENERAL_ID)
    general.initialize_sync()
    app.storage._general = general


class DashboardDispatcher:
    """The root ASGI app: ``/dashboard`` (http, websocket) to the shell, the rest to the API."""

    def __init__(self, api: ASGIApp, shell: FastAPI, context: DashboardContext) -> None:
        self.api = api
        self.context = context
        self._shell = cast(_ShellApp, shell)
        # run_with's lifespan finds the uvicorn server by walking `.app` down to the shell
        self.app = shell

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one connection; the lifespan always goes to the API."""
        if scope["type"] in ("http", "websocket"):
            route = route_path(scope)
            if route == MOUNT_PATH or route.startswith(MOUNT_PATH + "/"):
                await self._shell({**scope, SCOPE_KEY: self.context}, receive, send)
                return
        await self.api(scope, receive, send)


class Dashboard:
    """One app's dashboard: its context, the lifespan that runs NiceGUI, and the dispatcher."""

    def __init__(self, services: Services) -> None:
        settings = services.settings
        cookie_key = auth.cookie_secret(services.api_key)
        self.context = DashboardContext(services, cookie_key)
        self.storage_dir = settings.data_dir / "dashboard"
        self.shell = _shell_once(cookie_key, settings.dashboard_session_hours)

    @asynccontextmanager
    async def lifespan(self, _: Litestar) -> AsyncIterator[None]:
        """Start NiceGUI inside Litestar's lifespan; stop it (and the stream) on the way out."""
        from nicegui import app, run

        if not app.is_stopped:
            raise RuntimeError(
                "the dashboard is already running in this process: one app's dashboard at a time"
            )
        _pin_storage(self.storage_dir)
        if _PROCESS.started_before:
            run.reset()  # the previous shut-down closed NiceGUI's thread pool
        handlers = list(app._shutdown_handlers)  # start() appends to it at every start
        _PROCESS.started_before = True
        self.context.open()
        try:
            async with self.shell.router.lifespan_context(self.shell):
                try:
                    yield
                finally:
                    await self.context.close()
        finally:
            app._shutdown_handlers[:] = handlers

    def dispatcher(self, api: ASGIApp) -> DashboardDispatcher:
        """The root ASGI app that puts this dashboard in front of ``api``."""
        return DashboardDispatcher(api, self.shell, self.context)
