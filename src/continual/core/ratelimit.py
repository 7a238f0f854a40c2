"""Token buckets per client, and who the client of a request is (framework-free).

The API's rate-limit middleware (``continual.web.ratelimit``) and the dashboard's login
(``continual.ui``) both count with these.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_CLIENTS = 10_000  # buckets kept; the least recently seen are forgotten first


class Buckets:
    """Token buckets keyed by client: ``per_minute`` requests, bursts of a sixth of it."""

    def __init__(
        self,
        per_minute: int,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.capacity = float(burst if burst is not None else max(1, per_minute // 6))
        self._clock = clock
        self._max = max_clients
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()  # the dashboard may call from another thread

    @property
    def enabled(self) -> bool:
        """Whether this budget limits anything."""
        return self.per_minute > 0

    def _level(self, key: str, now: float) -> float:
        tokens, at = self._state.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - at) * self.rate)

    def take(self, key: str) -> float:
        """Spend one token; return 0 if allowed, else the seconds until one is free."""
        if not self.enabled:
            return 0.0
        with self._lock:
            now = self._clock()
            tokens = self._level(key, now)
            if tokens >= 1.0:
                self._remember(key, (tokens - 1.0, now))
                return 0.0
            self._remember(key, (tokens, now))
            return (1.0 - tokens) / self.rate

    def wait(self, key: str) -> float:
        """Seconds until ``key`` has a token again, without spending one (0 if it has)."""
        if not self.enabled or not self._state:  # no client has spent a token: all are full
            return 0.0
        with self._lock:
            tokens = self._level(key, self._clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def _remember(self, key: str, state: tuple[float, float]) -> None:
        self._state[key] = state
        self._state.move_to_end(key)
        while len(self._state) > self._max:
            self._state.popitem(last=False)


def parse_networks(raw: Iterable[str]) -> tuple[Network, ...]:
    """CIDR blocks or single addresses; raises ``ValueError`` naming a bad one."""
    out: list[Network] = []
    for part in raw:
        text = part.strip()
        if text:
            out.append(ipaddress.ip_network(text, strict=False))
    return tuple(out)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    candidate = text.strip().strip('"')
    if candidate.startswith("[") and "]" in candidate:  # "[::1]:8080"
        candidate = candidate[1 : candidate.index("]")]
    elif candidate.count(":") == 1:  # "10.0.0.1:8080"
        candidate = candidate.split(":", 1)[0]
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        return None


def _trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, nets: tuple[Network, ...]
) -> bool:
    return any(address.version == net.version and address in net for net in nets)


def client_address(scope: Mapping[str, Any], trusted: tuple[Network, ...]) -> str:
    """The client a request comes from: the peer, or what a trusted proxy says it forwarded."""
    client = scope.get("client")
    peer = str(client[0]) if client else "unknown"
    if not trusted:
        return peer
    peer_ip = _address(peer)
    if peer_ip is None or not _trusted(peer_ip, trusted):
        return peer
    forwarded = b",".join(v for k, v in scope["headers"] if k == b"x-forwarded-for")
    hops = [h for h in forwarded.decode("latin-1").split(",") if h.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return peer  # a malformed header is not believed
        if not _trusted(address, trusted):
            return str(address)
    return peer
