"""Database leases: held by a heartbeat, released on shutdown, taken over after death.

A lease names its holder (``CONTINUAL_REPLICA_ID``, by default ``host-pid``) and lives
``CONTINUAL_LEASE_TTL_SECONDS`` (15 s). Its holder renews it every third of that
(``LeaseKeeper.heartbeat``, a job of its own, so a long retrain in the worker does not
starve it), and gives it up on shutdown. A holder that dies stops renewing: on any host
its lease expires within one TTL, and the next heartbeat of another replica (every
third of a TTL) takes it, so a new holder exists within ``4/3 * TTL`` (20 s by default).
A holder on this host whose process is gone is taken from at once, without waiting for
expiry (``holder_is_dead``).

A scheduled job run under a lease claims its slot (``claim_slot``), so a lease that
changed hands between two replicas' timers does not run one interval's job twice.
Work guarded by a lease asks ``still_holds`` before its point of no return (a retrain
before it promotes): a holder that could not renew in time may have been replaced.
"""

from __future__ import annotations

import os
import socket
import threading

import structlog

from continual.core.clock import Clock
from continual.core.errors import ContinualError
from continual.core.ports import LeasesPort, MetaPort

log = structlog.get_logger("continual.lease")


def holder_is_dead(holder: str) -> bool:
    """Whether ``holder`` (``host-pid``) was a process on this host that no longer runs."""
    host, _, pid = holder.rpartition("-")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)  # signal 0: existence check only, nothing is sent
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by someone else
        return False
    return False


def take(leases: LeasesPort, name: str, holder: str, ttl: float, now: float) -> bool:
    """Take or renew ``name``; also take it from a dead holder on this host."""
    if leases.try_lease(name, holder, ttl, now):
        return True
    current = leases.lease_holder(name)
    if current is None or not holder_is_dead(current):
        return False
    return leases.try_lease(name, holder, ttl, now, take_from=current)


class LeaseKeeper:
    """This replica's leases: what it holds until when, renewed by ``heartbeat``.

    Blocking (one short database statement per call): call it off the event loop."""

    def __init__(
        self, leases: LeasesPort, meta: MetaPort, holder: str, ttl: float, clock: Clock
    ) -> None:
        self.leases = leases
        self.meta = meta
        self.holder = holder
        self.ttl = ttl
        self.clock = clock
        self._until: dict[str, float] = {}  # held lease -> when it expires unless renewed
        self._wanted: set[str] = set()  # leases the heartbeat also tries to take
        self._lock = threading.Lock()  # the heartbeat and a retrain renew from two threads
        self._closed = False  # shut down: a beat still under way must not take one again

    @property
    def renew_seconds(self) -> float:
        """How often the heartbeat runs: a third of the TTL, so two renewals may fail."""
        return self.ttl / 3

    def want(self, name: str) -> None:
        """Let the heartbeat take ``name`` whenever it is free (the check lease)."""
        self._wanted.add(name)

    def acquire(self, name: str) -> bool:
        """Take or renew ``name`` now; ``True`` if this replica holds it."""
        with self._lock:
            return self._acquire(name)

    def _acquire(self, name: str) -> bool:
        if self._closed:
            return False
        now = self.clock.now()
        got = take(self.leases, name, self.holder, self.ttl, now)
        if got:
            if not self.holds(name):
                log.info("lease_taken", lease=name, holder=self.holder, ttl=self.ttl)
            self._until[name] = now + self.ttl
        elif self._until.pop(name, None) is not None:
            log.warning("lease_lost", lease=name, holder=self.holder)
        return got

    def holds(self, name: str) -> bool:
        """Whether this replica held ``name`` at its last renewal and it has not expired."""
        return self._until.get(name, 0.0) > self.clock.now()

    def still_holds(self, name: str) -> bool:
        """Renew ``name`` and say whether it is still ours (before a point of no return)."""
        return self.holds(name) and self.acquire(name)

    def heartbeat(self) -> dict[str, bool]:
        """Renew every held lease and try every wanted one; what this replica holds now."""
        result: dict[str, bool] = {}
        with self._lock:
            names = sorted(set(self._until) | self._wanted)
        for name in names:
            try:
                result[name] = self.acquire(name)
            except ContinualError as exc:  # the database did not answer: the TTL allows two
                log.warning("lease_renew_failed", lease=name, error=type(exc).__name__)
                result[name] = False
        return result

    def claim_slot(self, name: str, slot: int) -> bool:
        """Whether run ``slot`` of the job ``name`` is still to do; if so it is claimed.

        Every replica's scheduler fires at the same instants (multiples of the interval);
        ``slot`` numbers them. Only the lease's holder claims, so a read and a write do;
        a new holder that took over after the old one ran this slot skips it."""
        if not self.holds(name):
            return False
        raw = self.meta.get_meta(f"{name}_slot") or ""
        if raw.lstrip("-").isdigit() and int(raw) >= slot:
            return False
        self.meta.set_meta(f"{name}_slot", str(slot))
        return True

    def release(self, name: str) -> None:
        """Give ``name`` up (if this replica holds it)."""
        with self._lock:
            self._until.pop(name, None)
            self.leases.release_lease(name, self.holder)

    def release_all(self) -> None:
        """Give every lease up (shutdown): the others take over at their next heartbeat."""
        with self._lock:
            self._closed = True
            self._wanted.clear()
            names = list(self._until)
        for name in names:
            self.release(name)
