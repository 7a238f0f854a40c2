"""Named leases, so that exactly one replica runs a job at a time."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from continual.adapters.db import tables as _tables  # noqa: F401 - registers the tables
from continual.adapters.db.base import Db

_LEASES = SQLModel.metadata.tables["leases"]


class LeaseRepository:
    """A lease row per job; taken by an update that only the holder or expiry allows."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def try_lease(
        self, name: str, holder: str, ttl: float, now: float, take_from: str | None = None
    ) -> bool:
        """Take or renew the lease ``name`` for ``ttl`` seconds; ``True`` if we hold it.

        ``take_from``: a holder known to be dead, whose unexpired lease may be taken."""
        owners = [holder] if take_from is None else [holder, take_from]
        with self.db.begin() as conn:
            taken = conn.execute(
                update(_LEASES)
                .where(
                    _LEASES.c.name == name,
                    _LEASES.c.holder.in_(owners) | (_LEASES.c.expires_at < now),
                )
                .values(holder=holder, expires_at=now + ttl)
            ).rowcount
        if taken:
            return True
        try:
            with self.db.begin() as conn:
                conn.execute(
                    _LEASES.insert().values(name=name, holder=holder, expires_at=now + ttl)
                )
        except IntegrityError:
            return False
        return True

    def lease_holder(self, name: str) -> str | None:
        """Who holds (or last held) the lease ``name``."""
        with self.db.connect() as conn:
            return conn.execute(select(_LEASES.c.holder).where(_LEASES.c.name == name)).scalar()

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up if we hold it."""
        with self.db.begin() as conn:
            conn.execute(delete(_LEASES).where(_LEASES.c.name == name, _LEASES.c.holder == holder))
