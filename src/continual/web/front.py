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
from typing import Any, cast

import msgspec
import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from continual.bootstrap import Services
from continual.web.ratelimit import Gate

log = structlog.get_logger("continual.http")

# A lane answers (body, scope, the request's headers) -> JSON bytes, or raises to hand over
# to Litestar. The headers are read once, the first of each name wins (as Litestar reads them).
Headers = dict[bytes, bytes]
Lane = Callable[[Services, bytes, Scope, Headers], Awaitable[bytes]]
# the constant answers of the liveness probes, as their Litestar handlers give them
_LIVE = {
    "/health": msgspec.json.encode({"status": "ok"}),
    "/v2/health/live": msgspec.json.encode({"ready": True}),
}
_JSON = (b"content-type", b"application/json")


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
        headers: Headers = dict(reversed(cast(list[tuple[bytes, bytes]], scope["headers"])))
        given = headers.get(b"x-request-id")
        request_id = (given.decode("latin-1")[:64] if given else "") or os.urandom(8).hex()
        self.services.request_started()
        status, route = 500, ""  # what is counted if serving raises
        try:
            served, route, receive = await self._lane(scope, receive, send, headers, request_id)
            status = served or await self._litestar(scope, receive, send, request_id)
        finally:
            route = route or str(scope.get("path_template") or "unmatched")
            self._done(str(scope.get("method", "")), route, status, started, request_id)

    def _done(self, method: str, route: str, status: int, started: float, request_id: str) -> None:
        """Count the request and its latency; log it when it failed, was slow, or the
        access log asks."""
        elapsed = time.perf_counter() - started
        self.services.observe_request(method, route, status, elapsed)
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
                request_id=request_id,
            )

    async def _litestar(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> int:
        """Litestar serves the request, its log lines bound to the request id; the status
        it answered (500 if none)."""
        status = 500
        id_header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
        return status

    def _match(self, path: str) -> tuple[str, Lane] | None:
        """The lane for a POST path, if one serves it."""
        found = self.lanes.get(path)
        if found is not None:
            return found
        for prefix, suffix, template, lane in self.prefixed:
            if path.startswith(prefix) and path.endswith(suffix):
                return template, lane
        return None

    async def _lane(
        self, scope: Any, receive: Receive, send: Send, headers: Headers, request_id: str
    ) -> tuple[int, str, Receive]:
        """Serve the request on a fast lane: (status, route template, ``receive``); status
        0 when Litestar must, with nothing sent (and ``receive`` replaying a body read)."""
        method = scope["method"]
        path = scope["path"]
        if method == "GET" and (live := _LIVE.get(path)) is not None:
            await _send(send, 200, live, request_id)
            return 200, path, receive
        found = self._match(path) if method == "POST" else None
        if found is None or not self.gate.open_for_predict(scope, headers.get(b"authorization")):
            return 0, "", receive
        length = headers.get(b"content-length", b"")
        if not (length.isdigit() and int(length) <= self.max_body):
            return (
                0,
                "",
                receive,
            )  # chunked or over the limit: Litestar streams it (and answers 413)
        template, lane = found
        body = await _read(receive)
        if body is None:  # the client went away: there is no one to answer
            return 500, template, receive
        try:
            answer = await lane(self.services, body, scope, headers)
        except Exception:  # noqa: BLE001 - Litestar answers it, with the canonical error
            return 0, "", _replay(body, receive)
        await _send(send, 200, answer, request_id)
        return 200, template, receive


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


async def _send(send: Send, status: int, body: bytes, request_id: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                _JSON,
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
