"""API-key auth: a bearer token compared in constant time, and its OpenAPI description."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec

from continual.web.schemas import ErrorBody

BEARER: list[dict[str, list[str]]] = [{"BearerAuth": []}]
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="continual"'}


def require_api_key(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard: the request must carry ``Authorization: Bearer <API key>``."""
    del handler  # one key guards every protected route
    expected: bytes = connection.app.state.api_key_bytes
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    # compare_digest runs in time independent of where the strings differ
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
        raise NotAuthorizedException("missing or wrong API key", headers=CHALLENGE)


_DESCRIPTIONS = {
    400: "Malformed request (e.g. invalid JSON)",
    401: "Missing or wrong API key",
    404: "Not found",
    409: "Conflicts with work under way",
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


PROTECTED: dict[str, Any] = {"guards": [require_api_key], "security": BEARER}
