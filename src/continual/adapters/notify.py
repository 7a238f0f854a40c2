"""Webhook adapter (httpx): posts JSON to Discord, Slack or any webhook; ``HttpNotifier``
is the notifier port (``core.ports.NotifierPort``).

Bounded: a timeout per attempt, a few attempts, ``Retry-After`` honoured on 429 (capped),
never raises to the caller: the outcome is returned for the audit trail. URLs are
secrets; only their host is ever reported.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import httpx

from continual.core.types import Delivery


class HttpNotifier:
    """The notifier port over one ``httpx.AsyncClient``, which it owns.

    The client is made on first use, in the event loop that uses it, and ``close`` ends
    it; a later call makes a new one (a test may run several loops in turn)."""

    def __init__(self, timeout: float, attempts: int = 3, max_retry_after: float = 10.0) -> None:
        self.timeout = timeout
        self.attempts = attempts
        self.max_retry_after = max_retry_after
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = new_client()
        return self._client

    async def deliver(self, channel: str, url: str, payload: dict[str, Any]) -> Delivery:
        """POST ``payload``, retried within bounds; never raises."""
        return await post_json(
            self._http(), channel, url, payload, self.timeout, self.attempts, self.max_retry_after
        )

    async def push(self, url: str, params: dict[str, str]) -> bool:
        """One heartbeat GET; ``True`` on a 2xx answer, never raises."""
        return await ping(self._http(), url, params, self.timeout)

    async def close(self) -> None:
        """Close the HTTP client (deliveries under way are the caller's to finish first)."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def redact(url: str) -> str:
    """Scheme and host only: enough to tell channels apart, never the token in the path."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/…"


async def post_json(
    client: httpx.AsyncClient,
    channel: str,
    url: str,
    payload: dict[str, Any],
    timeout: float,
    attempts: int = 3,
    max_retry_after: float = 10.0,
) -> Delivery:
    """POST ``payload``; retry on errors, 5xx and 429 within bounds."""
    status: int | None = None
    error: str | None = None
    for attempt in range(1, attempts + 1):
        try:
            response = await client.post(url, json=payload, timeout=timeout)
            status = response.status_code
            if status < 300:
                return Delivery(channel, True, attempt, status, None, redact(url))
            error = f"HTTP {status}"
            if status == 429:
                wait = _retry_after(response.headers.get("retry-after"), max_retry_after)
            elif status >= 500:
                wait = 0.5 * attempt
            else:
                break  # a 4xx other than 429 will not get better
        except httpx.HTTPError as exc:
            error = type(exc).__name__
            status = None
            wait = 0.5 * attempt
        if attempt < attempts:
            await asyncio.sleep(wait)
    return Delivery(channel, False, attempt, status, error, redact(url))


async def ping(client: httpx.AsyncClient, url: str, params: dict[str, str], timeout: float) -> bool:
    """One GET (a push monitor's heartbeat); ``True`` on a 2xx answer, never raises."""
    try:
        response = await client.get(url, params=params, timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code < 300


def _retry_after(raw: str | None, cap: float) -> float:
    try:
        return min(cap, max(0.0, float(raw))) if raw else 1.0
    except ValueError:
        return 1.0


def new_client() -> httpx.AsyncClient:
    """A client for outbound webhooks (no redirects to elsewhere, bounded pool)."""
    return httpx.AsyncClient(
        follow_redirects=False,
        limits=httpx.Limits(max_connections=10),
        headers={"user-agent": "continual-alerts"},
    )
