"""ASGI middleware: a request id per request and one structured log line per request."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Protocol

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("continual.http")


class RequestObserver(Protocol):
    """Receives request start and finish (the metrics adapter implements it)."""

    def request_started(self) -> None:
        """A request began."""

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """A request finished."""


def request_context(observe: RequestObserver | None = None) -> Callable[[ASGIApp], ASGIApp]:
    """Middleware factory: binds ``request_id``, logs method, route, status and duration."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def handle(scope: Scope, receive: Receive, send: Send) -> None:
            if str(scope["type"]) != "http":
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            incoming = dict(scope["headers"]).get(b"x-request-id", b"")
            request_id = incoming.decode("latin-1")[:64] if incoming else os.urandom(8).hex()
            status = 500

            async def send_with_id(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message["headers"] = [
                        *message.get("headers", []),
                        (b"x-request-id", request_id.encode()),
                    ]
                await send(message)

            structlog.contextvars.bind_contextvars(request_id=request_id)
            if observe is not None:
                observe.request_started()
            try:
                await app(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                route = str(scope.get("path_template") or "unmatched")
                method = str(scope.get("method", ""))
                if observe is not None:
                    observe.observe_request(method, route, status, elapsed)
                log.info(
                    "request",
                    method=method,
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 3),
                )
                structlog.contextvars.unbind_contextvars("request_id")

        return handle

    return middleware
