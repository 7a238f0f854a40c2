"""Dashboard sign-in rules: which secret logs in, how a session expires, how guessing slows.

Framework-free, so the rules are tested without a browser; ``continual.ui.mount`` (the
middleware) and ``continual.ui.pages.login`` apply them to NiceGUI's per-browser storage.

- The password is ``CONTINUAL_DASHBOARD_PASSWORD``; with none set, the API key logs in.
  There is no default.
- A session is ``{"expires_at": ..., "key": ...}`` in the browser's server-side storage.
  ``key`` is an HMAC of the login secret, so changing the password or the API key ends
  every session, and the file on disk reveals nothing that could be guessed offline.
- Each wrong password waits longer (doubling up to a cap, over a sliding window), and only
  a few attempts may wait at once; the rest are refused unchecked, so parallel guessing
  gains nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

from continual.settings import Secret

SESSION_KEY = "continual_session"
LOGIN_PATH = "/login"
_COOKIE_CONTEXT = b"continual dashboard session cookie v1"
_FINGERPRINT_CONTEXT = b"continual dashboard session key v1:"


def login_secret(dashboard_password: Secret | None, api_key: Secret) -> Secret:
    """The secret that logs in: the dashboard password, else the API key."""
    return dashboard_password if dashboard_password is not None else api_key


def cookie_secret(api_key: Secret) -> str:
    """The key that signs the session cookie, derived from the API key.

    Derived rather than stored: replicas that share an API key accept each other's
    cookies, rotating the key logs everyone out, and there is no extra file to guard.
    """
    return hmac.new(api_key.value.encode(), _COOKIE_CONTEXT, hashlib.sha256).hexdigest()


def fingerprint(secret: Secret, cookie_key: str) -> str:
    """What a session stores to prove it was opened with the current login secret."""
    mac = hmac.new(cookie_key.encode(), _FINGERPRINT_CONTEXT + secret.value.encode(), "sha256")
    return mac.hexdigest()[:32]


def password_matches(given: str, secret: Secret) -> bool:
    """Constant-time comparison of a typed password with the login secret."""
    return hmac.compare_digest(given.encode(), secret.value.encode())


def safe_target(target: str | None) -> str:
    """Where to go after logging in: a prefix-free local page, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if target.split("?")[0] == LOGIN_PATH:
        return "/"
    return target


def new_session(now: float, hours: float, key: str) -> dict[str, float | str]:
    """The session record stored for a browser after a good password."""
    return {"expires_at": now + hours * 3600.0, "key": key}


def session_valid(record: object, now: float, key: str) -> bool:
    """Whether a stored session record is unexpired and opened with the current secret."""
    if not isinstance(record, Mapping):
        return False
    expires_at = record.get("expires_at")
    stored_key = record.get("key")
    if not isinstance(expires_at, int | float) or not isinstance(stored_key, str):
        return False
    return now < expires_at and hmac.compare_digest(stored_key, key)


Attempt = Literal["ok", "wrong", "busy"]


class LoginThrottle:
    """Slows wrong passwords: the n-th recent failure waits ``base * 2**(n-1)`` (capped).

    Failures older than ``window`` seconds are forgotten; a good password clears them.
    At most ``max_waiting`` wrong attempts wait at once: further attempts are answered
    ``busy`` without the password being compared at all.
    """

    def __init__(
        self,
        base: float = 0.5,
        cap: float = 8.0,
        window: float = 300.0,
        max_waiting: int = 4,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base = base
        self.cap = cap
        self.window = window
        self.max_waiting = max_waiting
        self._clock = clock
        self._sleep = sleep
        self._failures: deque[float] = deque()
        self._waiting = 0

    def _recent(self) -> int:
        horizon = self._clock() - self.window
        while self._failures and self._failures[0] < horizon:
            self._failures.popleft()
        return len(self._failures)

    def delay(self) -> float:
        """How long the next wrong password will wait."""
        return min(self.cap, self.base * 2.0 ** self._recent())

    async def attempt(self, given: str, secret: Secret) -> Attempt:
        """Judge one typed password; a wrong one answers only after its delay."""
        if self._waiting >= self.max_waiting:
            return "busy"
        if password_matches(given, secret):
            self._failures.clear()
            return "ok"
        wait = self.delay()
        self._failures.append(self._clock())
        self._waiting += 1
        try:
            await self._sleep(wait)
        finally:
            self._waiting -= 1
        return "wrong"
