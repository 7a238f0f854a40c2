"""The one ASGI layer in front of the API: request id, metrics, the access log, fast lanes.

Every HTTP request passes here once. It gets an ``X-Request-Id`` (the caller's, or a new
one), is counted with its latency by route, and is logged as one line when it failed
(status 400 and above) or was slow (``CONTINUAL_SLOW_REQUEST_MS``), else as
``CONTINUAL_ACCESS_LOG`` says: ``on`` (every request), ``sampled`` (a share,
``CONTINUAL_ACCESS_LOG_SAMPLE``), ``off``.

The fast lanes answer the hottest routes without Litestar's per-request machinery
(routing, signature parsing, the response object: 60 % of a small predict, profiled):
``GET /health`` and the V2 liveness probe with a constant body, and ``POST /predict`` and
V2 infer by decoding the body with msgspec and calling the same function as their
Litestar handlers. A lane only serves what it can answer whole and well: anything else
(a wrong key, a rate-limited client, a body that fails to decode or validate) is handed
to Litestar with the body replayed, so every error comes from one place, in one shape.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from continual.bootstrap import Services
from continual.web.ratelimit import Gate

log = structlog.get_logger("continual.http")

# A lane answers (body of the request) -> JSON bytes, or raises to hand over to Litestar.
Lane = Callable[[Services, bytes, Scope], Awaitable[bytes]]
# the constant answers of the liveness probes, as their Litestar handlers give them
_LIVE = {
    "/health": msgspec.json.encode({"status": "ok"}),
    "/v2/health/live": msgspec.json.encode({"ready": True}),
}
_JSON = [(b"content-type", b"application/json")]


class Front:
    """Wraps the Litestar app; see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        services: Services,
        gate: Gate,
        lanes: dict[str, tuple[str, Lane]],
        prefixed: tuple[tuple[str, str, str, Lane], ...] = (),
    ) -> None:
        self.app = app
        self.services = services
        self.gate = gate
        self.lanes = lanes  # path -> (route template, lane), POST only
        self.prefixed = prefixed  # (prefix, suffix, route template, lane)
        s = services.settings
        self.always = s.access_log == "on"
        self.sample = s.access_log_sample if s.access_log == "sampled" else 0.0
        self.slow = s.slow_request_ms / 1000
        self.max_body = s.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if str(scope["type"]) != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")[:64]
                break
        request_id = request_id or os.urandom(8).hex()
        id_header = (b"x-request-id", request_id.encode())
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        svc = self.services
        svc.request_started()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            if not await self._lane(scope, receive, send_with_id):
                await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = str(scope.get("path_template") or "unmatched")
            method = str(scope.get("method", ""))
            svc.observe_request(method, route, status, elapsed)
            if (
                status >= 400
                or elapsed >= self.slow
                or self.always
                or (self.sample and random.random() < self.sample)
            ):
                (log.warning if status >= 500 or elapsed >= self.slow else log.info)(
                    "request",
                    method=method,
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 3),
                )
            structlog.contextvars.unbind_contextvars("request_id")

    def _match(self, scope: Any) -> tuple[str, Lane] | None:
        """The lane for a POST path, if one serves it."""
        path: str = scope["path"]
        found = self.lanes.get(path)
        if found is not None:
            return found
        for prefix, suffix, template, lane in self.prefixed:
            if path.startswith(prefix) and path.endswith(suffix):
                return template, lane
        return None

    async def _lane(self, scope: Any, receive: Receive, send: Send) -> bool:
        """Serve the request on a fast lane; ``False`` when Litestar must (nothing sent)."""
        method = scope["method"]
        if method == "GET" and (live := _LIVE.get(scope["path"])) is not None:
            scope["path_template"] = scope["path"]
            await _send(send, 200, live)
            return True
        found = self._match(scope) if method == "POST" else None
        if found is None or not self.gate.open_for_predict(scope):
            return False
        length = -1
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = int(value) if value.isdigit() else -1
                break
        if not 0 <= length <= self.max_body:
            return False  # chunked or over the limit: Litestar streams it (and answers 413)
        template, lane = found
        body = await _read(receive)
        if body is not None:  # else the client went away: there is no one to answer
            try:
                answer = await lane(self.services, body, scope)
            except Exception:  # noqa: BLE001 - Litestar answers it, with the canonical error
                await self.app(scope, _replay(body, receive), send)
                return True
            scope["path_template"] = template
            await _send(send, 200, answer)
        return True


async def _read(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the body read already, then waits on the real one."""
    sent = False

    async def again() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


async def _send(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_JSON, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
