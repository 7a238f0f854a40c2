"""The audit trail (events) and the record of every check."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import select
from sqlmodel import SQLModel

from continual.adapters.db import tables as _tables  # noqa: F401 - registers the tables
from continual.adapters.db.base import Db
from continual.core.types import CheckRecord, Event

_encode = msgspec.json.encode
_decode_dict = msgspec.json.Decoder(dict[str, Any]).decode
_EVENTS = SQLModel.metadata.tables["events"]
_CHECKS = SQLModel.metadata.tables["checks"]


class EventRepository:
    """Events, newest first, and compact check records."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def add_event(self, at: float, kind: str, message: str, data: dict[str, Any]) -> Event:
        """Append an event to the audit trail."""
        payload = _encode(data).decode()
        with self.db.begin() as conn:
            new_id = conn.execute(
                _EVENTS.insert().values(at=at, kind=kind, message=message, data=payload)
            ).inserted_primary_key
        return Event(
            id=int(new_id[0]) if new_id else 0, at=at, kind=kind, message=message, data=data
        )

    def events(
        self, limit: int = 100, kind: str | None = None, before_id: int | None = None
    ) -> list[Event]:
        """Events, newest first, optionally of one kind and before an id (paging)."""
        query = select(_EVENTS).order_by(_EVENTS.c.id.desc()).limit(limit)
        if kind:
            query = query.where(_EVENTS.c.kind == kind)
        if before_id:
            query = query.where(_EVENTS.c.id < before_id)
        with self.db.connect() as conn:
            got = conn.execute(query).all()
        return [
            Event(id=r.id, at=r.at, kind=r.kind, message=r.message, data=_decode_dict(r.data))
            for r in got
        ]

    def add_check(self, record: CheckRecord) -> None:
        """Record one check compactly."""
        with self.db.begin() as conn:
            conn.execute(_CHECKS.insert().values(**msgspec.structs.asdict(record)))

    def checks(self, limit: int = 500) -> list[CheckRecord]:
        """Recent checks, oldest first (for charts)."""
        with self.db.connect() as conn:
            got = conn.execute(select(_CHECKS).order_by(_CHECKS.c.id.desc()).limit(limit)).all()
        return [
            CheckRecord(
                at=r.at,
                decision=r.decision,
                accuracy=r.accuracy,
                samples=r.samples,
                model_version=r.model_version,
                drift_share=r.drift_share,
                reason=r.reason,
                estimated_accuracy=r.estimated_accuracy,
                estimated_samples=r.estimated_samples or 0,
            )
            for r in reversed(got)
        ]
