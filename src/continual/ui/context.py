"""The per-app state the dashboard's pages work with, handed to them through the ASGI scope.

NiceGUI keeps one set of pages per process, but each ``create_app`` has its own services,
password and stream: the root dispatcher puts this app's ``DashboardContext`` into every
request's scope, and a page takes it from there (``context_of``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from continual.bootstrap import Services
from continual.core.ratelimit import Buckets, client_address, parse_networks
from continual.ui import auth
from continual.ui.chart import MARKERS
from continual.ui.stream import DataStream
from continual.ui.view import Overview

SCOPE_KEY = "continual.dashboard"
FEED_TTL = 1.0  # seconds an overview read is shared by every open tab


class DashboardContext:
    """One app's dashboard: its services, login rules, overview feed and data stream."""

    def __init__(self, services: Services, cookie_key: str) -> None:
        settings = services.settings
        self.services = services
        self.secret = auth.login_secret(settings.dashboard_password, services.api_key)
        self.session_key = auth.fingerprint(self.secret, cookie_key)
        self.session_hours = settings.dashboard_session_hours
        self.throttle = auth.LoginThrottle()
        # wrong passwords per client address, the same budget as wrong API keys
        self.login_failures = Buckets(
            settings.rate_limit_auth_failures, burst=settings.rate_limit_auth_failures
        )
        self.trusted_proxies = parse_networks(settings.trusted_proxies)
        self.stream = DataStream(services.ingest)
        self._overview: Overview | None = None
        self._overview_at = 0.0
        self._overview_lock = asyncio.Lock()

    def client(self, scope: Mapping[str, Any]) -> str:
        """The address a login comes from (a trusted proxy's forwarded one if configured)."""
        return client_address(scope, self.trusted_proxies)

    def signed_in(self, user: Mapping[str, Any]) -> bool:
        """Whether a browser's storage holds a valid session for this app."""
        return auth.session_valid(user.get(auth.SESSION_KEY), time.time(), self.session_key)

    def open_session(self) -> dict[str, float | str]:
        """A fresh session record for a browser that gave the right password."""
        return auth.new_session(time.time(), self.session_hours, self.session_key)

    async def overview(self) -> Overview:
        """The overview's data; one read per ``FEED_TTL`` however many tabs ask."""
        async with self._overview_lock:
            if self._overview is None or time.monotonic() - self._overview_at >= FEED_TTL:
                self._overview = await asyncio.to_thread(self._read_overview)
                self._overview_at = time.monotonic()
            return self._overview

    def _read_overview(self) -> Overview:
        svc = self.services
        markers = [e for kind in MARKERS for e in svc.reads.events(200, kind, None)]
        return Overview(status=svc.monitor.status(), checks=svc.reads.checks(500), markers=markers)

    def forget_overview(self) -> None:
        """Drop the shared read, after an action whose effect should show at once."""
        self._overview = None

    def open(self) -> None:
        """Make the loop-bound parts anew when the dashboard starts (a restart has a new loop)."""
        self._overview = None
        self._overview_lock = asyncio.Lock()

    async def close(self) -> None:
        """Stop background work when the dashboard shuts down."""
        await self.stream.stop()


def context_of(scope: Mapping[str, Any]) -> DashboardContext:
    """The app's context, as the root dispatcher put it into the request's scope."""
    ctx = scope.get(SCOPE_KEY)
    if not isinstance(ctx, DashboardContext):
        raise RuntimeError("dashboard request without its app context")  # noqa: TRY004 - a wiring bug, not a type check
    return ctx
