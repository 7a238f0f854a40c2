"""API-key auth: a bearer token compared in constant time, and its OpenAPI description."""

from __future__ import annotations

import hmac
from typing import Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import HTTPResponseStartEvent, Scope, Send

from continual.web.schemas import ErrorBody

BEARER: list[dict[str, list[str]]] = [{"BearerAuth": []}]
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="continual"'}


def key_matches(authorization: str, expected: bytes) -> bool:
    """Whether an ``Authorization`` header value is ``Bearer <the API key>``."""
    scheme, _, token = authorization.partition(" ")
    # compare_digest runs in time independent of where the strings differ
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected)


def scope_authorized(scope: Scope) -> bool:
    """The check the API middleware runs on every protected route (see ``PROTECTED``)."""
    return key_of_scope(scope, scope["litestar_app"].state.api_key_bytes)


def key_of_scope(scope: Scope, expected: bytes) -> bool:
    """Whether the request's ``Authorization`` header carries the key ``expected``."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return key_matches(value.decode("latin-1"), expected)
    return key_matches("", expected)


def is_protected(scope: Scope) -> bool:
    """Whether the matched route demands the API key."""
    handler = scope.get("route_handler")
    return handler is not None and bool(handler.opt.get(AUTH_OPT))


_UNAUTHORIZED = msgspec.json.encode({"error": "missing or wrong API key", "detail": None})


async def send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Answer from middleware, before any handler: a JSON body in one message."""
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *(headers or []),
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def refuse_unauthorized(send: Send) -> None:
    """The 401 answer, in the shape of every other error."""
    challenge = [(k.lower().encode(), v.encode()) for k, v in CHALLENGE.items()]
    await send_json(send, 401, _UNAUTHORIZED, challenge)


_DESCRIPTIONS = {
    400: "Malformed request (e.g. invalid JSON)",
    401: "Missing or wrong API key",
    404: "Not found",
    409: "Conflicts with work under way, or an idempotency key reused for another batch",
    413: "Body or batch over the configured limits",
    422: "Invalid input; `detail` names the field or row",
    503: "Not ready: no model, database or dependency unavailable",
}


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error codes a route returns."""
    return {
        code: ResponseSpec(
            data_container=ErrorBody, description=_DESCRIPTIONS[code], generate_examples=False
        )
        for code in codes
    }


AUTH_OPT = "api_key"
# Routes marked so are checked by the API's middleware (``web.ratelimit``), not by a
# Litestar guard: Litestar copies the route handler for every guard call and runs a sync
# guard in a worker thread, together ~1 ms a request, a third of single-row predict time.
PROTECTED: dict[str, Any] = {"opt": {AUTH_OPT: True}, "security": BEARER}
