"""The one table that turns errors into HTTP responses: ``{"error": ..., "detail": ...}``."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from continual.core.errors import (
    Conflict,
    ContinualError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    TrainingFailed,
    Unavailable,
)

log = structlog.get_logger("continual.web")

STATUS: list[tuple[type[ContinualError], int]] = [
    (PayloadTooLarge, 413),
    (InvalidInput, 422),
    (NotFound, 404),
    (Conflict, 409),
    (Unavailable, 503),
    (TrainingFailed, 422),
]


def _body(
    status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None
) -> Response[Any]:
    return Response(
        {"error": error, "detail": detail},
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def continual_error(_: Request[Any, Any, Any], exc: ContinualError) -> Response[Any]:
    """Our error tree, by the table above."""
    status = next((code for kind, code in STATUS if isinstance(exc, kind)), 500)
    headers = {"Retry-After": "1"} if status == 503 else None
    return _body(status, exc.message, exc.detail, headers)


def validation_error(_: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """Body shape errors (msgspec): 400 for malformed JSON, 422 for wrong fields."""
    extra = exc.extra if isinstance(exc.extra, list) else None
    if extra:
        fields = [
            {"field": str(e.get("key", "")), "message": str(e.get("message", ""))}
            for e in extra
            if isinstance(e, dict)
        ]
        first = fields[0] if fields else {"field": "body", "message": exc.detail}
        return _body(422, f"{first['field']}: {first['message']}", fields)
    return _body(400, str(exc.detail), {"field": "body"})


def http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Framework errors (401, 404, 405, 413 ...) in our shape."""
    headers = dict(exc.headers or {})
    detail = exc.extra if exc.extra else None
    return _body(exc.status_code, str(exc.detail), detail, headers or None)


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A bug: logged with its trace, answered without one."""
    log.error("unhandled_error", path=request.url.path, error=type(exc).__name__, exc_info=exc)
    return _body(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "internal error",
        {"request_id": request.headers.get("x-request-id")},
    )


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    ContinualError: continual_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    Exception: internal_error,
}
