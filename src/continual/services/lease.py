"""Database leases that survive a crashed holder on the same host.

A lease names its holder ``host-pid`` (the default replica id). A replica killed with
``kill -9`` cannot release its lease, and its time-to-live is long for a retrain (the
retrain's time bound plus a minute), so a restarted server would answer 409 for up to
16 minutes. When the holder ran on this host and its process is gone, the lease is
taken at once; a holder on another host is waited for until its lease expires.
"""

from __future__ import annotations

import os
import socket

from continual.core.ports import LeasesPort


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
