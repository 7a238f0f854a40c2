"""The one table that turns errors into HTTP responses: ``{"error": ..., "detail": ...}``.

Besides our own error tree, three kinds of failure from below are answered plainly
rather than as a 500, because a client can act on them:

- the database is locked by another writer past the busy timeout: 503 with
  ``Retry-After`` (nothing was stored; retry with the same ``Idempotency-Key``);
- the disk is full or a write fails (SQLite ``SQLITE_FULL`` or ``SQLITE_IOERR``, an
  ``OSError`` ENOSPC/EDQUOT/EFBIG): 507 (nothing was stored);
- JSON nested deeper than the decoder recurses, or text that is not UTF-8: 400.
"""

from __future__ import annotations

import errno
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
    StorageBusy,
    StorageFailed,
    StorageFull,
    TrainingFailed,
    Unavailable,
)

log = structlog.get_logger("continual.web")

STATUS: list[tuple[type[ContinualError], int]] = [
    (PayloadTooLarge, 413),
    (StorageFull, 507),
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
    if isinstance(exc, StorageBusy | StorageFailed):
        # the database answers again within seconds (a busy writer), not at once
        headers = {"Retry-After": "2"}
        log.warning("database_busy" if isinstance(exc, StorageBusy) else "database_error")
    elif isinstance(exc, StorageFull):
        log.error("storage_full", where="database", reason=(exc.detail or {}).get("reason"))
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


_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def storage_error(request: Request[Any, Any, Any], exc: OSError) -> Response[Any]:
    """A full disk (or a file-size limit) is 507; any other OS error is a bug (500)."""
    if exc.errno in _FULL_ERRNOS:
        log.error("storage_full", path=request.url.path, where="file", errno=exc.errno)
        return _body(
            507, "no space left on the device; nothing was stored", {"reason": "disk_full"}
        )
    return internal_error(request, exc)


def encoding_error(request: Request[Any, Any, Any], exc: UnicodeDecodeError) -> Response[Any]:
    """A body (or a string in it) that is not UTF-8: malformed, not a crash."""
    log.warning("body_not_utf8", path=request.url.path, position=exc.start)
    return _body(400, f"the body is not valid UTF-8 (byte {exc.start})", {"field": "body"})


def nesting_error(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Any]:
    """JSON nested deeper than the decoder recurses: malformed for us, not a crash."""
    del exc
    log.warning("body_too_deep", path=request.url.path)
    return _body(400, "JSON is nested too deeply", {"field": "body"})


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    ContinualError: continual_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    OSError: storage_error,
    RecursionError: nesting_error,
    UnicodeDecodeError: encoding_error,
    Exception: internal_error,
}
