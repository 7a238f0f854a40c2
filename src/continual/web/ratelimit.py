"""Rate limiting per client (token buckets in front of the write routes), and the API key check.

Three budgets, each ``N`` requests per minute per client address (``0`` turns it off):

- ``CONTINUAL_RATE_LIMIT_WRITES``: the routes that store or change something
  (``POST /data``, ``/feedback``, ``/generate``, ``/check``, ``/retrain``,
  ``/models/{version}/promote``). Off by default: one script ingesting in a tight loop
  is the normal use, and the API key already keeps strangers out.
- ``CONTINUAL_RATE_LIMIT_PREDICT``: ``POST /predict`` and V2 infer. Off by default.
- ``CONTINUAL_RATE_LIMIT_AUTH_FAILURES``: requests answered 401. On by default (120 a
  minute, all of them at once if need be): once a client has spent them, its requests to
  protected routes are answered 429 until the bucket refills, so a flood of wrong keys
  costs the service nothing.

The write and predict buckets hold ``N / 6`` requests (ten seconds' worth, at least 1)
and refill at ``N / 60`` a second, so short bursts pass and a sustained rate above ``N``
a minute is refused with 429, ``Retry-After`` and the JSON error shape.

The client is the TCP peer. ``X-Forwarded-For`` is read only when the peer is one of
``CONTINUAL_TRUSTED_PROXIES`` (addresses or CIDR blocks); the client is then the
right-most address in the header that is not itself a trusted proxy. Without that
setting a forwarded header is ignored, so it cannot be used to dodge a limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec
import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from continual.core.ratelimit import Buckets, client_address, parse_networks
from continual.web.security import (
    is_protected,
    key_matches,
    key_of_scope,
    refuse_unauthorized,
    send_json,
)

if TYPE_CHECKING:
    from continual.settings import Settings

log = structlog.get_logger("continual.http")

WRITE_ROUTES: frozenset[str] = frozenset(
    {
        "/data",
        "/feedback",
        "/generate",
        "/check",
        "/retrain",
        "/models/{version}/promote",
    }
)


def predicts(route: str) -> bool:
    """Whether a POST to ``route`` spends the predict budget: ``/predict`` and V2 infer."""
    return route == "/predict" or route.startswith("/v2/")


class Limits(msgspec.Struct, frozen=True):
    """What the middleware enforces (built from the settings)."""

    writes: int = 0
    predict: int = 0
    auth_failures: int = 120
    trusted_proxies: tuple[str, ...] = ()


def limits_of(settings: Settings) -> Limits:
    """The rate limits a settings object asks for."""
    return Limits(
        writes=settings.rate_limit_writes,
        predict=settings.rate_limit_predict,
        auth_failures=settings.rate_limit_auth_failures,
        trusted_proxies=settings.trusted_proxies,
    )


_encode = msgspec.json.encode


async def _refuse(send: Send, message: str, retry_after: float, limit: int) -> None:
    seconds = max(1, math.ceil(retry_after))
    body = _encode(
        {"error": message, "detail": {"limit_per_minute": limit, "retry_after": seconds}}
    )
    await send_json(send, 429, body, [(b"retry-after", str(seconds).encode())])


class Gate:
    """The budgets and the API key check, shared by the Litestar middleware and the fast lane
    (``web.front``), so a request is refused the same way whichever of them serves it."""

    def __init__(self, limits: Limits, api_key: bytes) -> None:
        self.trusted = parse_networks(limits.trusted_proxies)
        self.writes = Buckets(limits.writes)
        self.predict = Buckets(limits.predict)
        self.failures = Buckets(limits.auth_failures, burst=limits.auth_failures)
        self.api_key = api_key

    def open_for_predict(self, scope: Scope, authorization: bytes | None) -> bool:
        """Whether a predict request passes with nothing to spend or refuse: the right key
        (``authorization``: the request's header), no predict budget, and a client not over
        its failure budget. Anything else goes the long way (``refused``), which answers it."""
        if self.predict.enabled or not key_matches(
            (authorization or b"").decode("latin-1"), self.api_key
        ):
            return False
        return not self.failures.enabled or not self.failures.wait(
            client_address(scope, self.trusted)
        )

    async def refused(self, scope: Scope, send: Send) -> bool:
        """Answer 429 or 401 when the request may not pass; ``True`` if it was answered."""
        client = client_address(scope, self.trusted)
        failures = self.failures
        if failures.enabled and (wait := failures.wait(client)):
            log.warning("rate_limited", budget="auth_failures", client=client)
            await _refuse(
                send,
                "too many requests with a missing or wrong API key from this client",
                wait,
                failures.per_minute,
            )
            return True
        budget = None
        route = ""
        if scope.get("method") != "GET":
            route = str(scope.get("path_template") or "")
            budget = (
                self.writes if route in WRITE_ROUTES else self.predict if predicts(route) else None
            )
        if budget is not None and budget.enabled and (wait := budget.take(client)):
            log.warning("rate_limited", budget=route, client=client)
            await _refuse(
                send,
                f"rate limit exceeded: {budget.per_minute} requests a minute per client; "
                "retry later",
                wait,
                budget.per_minute,
            )
            return True
        # the API key is checked here rather than by a Litestar guard (see
        # ``web.security.PROTECTED``); a refusal spends one auth-failure token
        if not key_of_scope(scope, self.api_key):
            failures.take(client)
            await refuse_unauthorized(send)
            return True
        return False


def rate_limit(gate: Gate) -> Callable[[ASGIApp], ASGIApp]:
    """Middleware factory: 429 when a client is over a budget, 401 without the key."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def handle(scope: Scope, receive: Receive, send: Send) -> None:
            # public routes carry no budget (every write and predict route is protected):
            # they pass with one dict lookup, and /health stays the framework's floor
            if scope["type"] != ScopeType.HTTP or not is_protected(scope):
                await app(scope, receive, send)
                return
            if not await gate.refused(scope, send):
                await app(scope, receive, send)

        return handle

    return middleware
