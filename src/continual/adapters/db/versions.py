"""Model versions (the source of truth for the champion) and their served periods."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import delete, func, select, update
from sqlmodel import SQLModel

from continual.adapters.db import tables as _tables  # noqa: F401 - registers the tables
from continual.adapters.db.base import Db
from continual.core.types import ModelRecord, ServedPeriod

_encode = msgspec.json.encode
_decode_dict = msgspec.json.Decoder(dict[str, Any]).decode
_TABLES = SQLModel.metadata.tables
_ROWS = _TABLES["labelled_rows"]
_VERSIONS = _TABLES["model_versions"]
_PERIODS = _TABLES["served_periods"]
_EVENTS = _TABLES["events"]
_META = _TABLES["meta"]


class VersionRepository:
    """Registered versions, promotion in one transaction, and the audit trail of periods."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def add_version(
        self,
        record: ModelRecord,
        reference: dict[str, Any],
    ) -> None:
        """Record a registered version (champion status is only set by ``promote``)."""
        with self.db.begin() as conn:
            conn.execute(
                _VERSIONS.insert().values(
                    version=record.version,
                    run_id=record.run_id,
                    model_type=record.model_type,
                    status=record.status,
                    created_at=record.created_at,
                    metrics=_encode(record.metrics).decode(),
                    params=_encode(record.params).decode(),
                    reason=record.reason,
                    sha256=record.sha256,
                    reference=_encode(reference).decode(),
                )
            )

    def versions(self) -> list[ModelRecord]:
        """Every recorded version, newest first."""
        with self.db.connect() as conn:
            got = conn.execute(select(_VERSIONS).order_by(_VERSIONS.c.created_at.desc())).all()
        return [_record(r._mapping) for r in got]

    def version(self, version: str) -> ModelRecord | None:
        """One version, or ``None``."""
        with self.db.connect() as conn:
            got = conn.execute(select(_VERSIONS).where(_VERSIONS.c.version == version)).first()
        return None if got is None else _record(got._mapping)

    def champion(self) -> ModelRecord | None:
        """The version the database says is champion (the source of truth), or ``None``."""
        with self.db.connect() as conn:
            got = conn.execute(select(_VERSIONS).where(_VERSIONS.c.status == "champion")).first()
        return None if got is None else _record(got._mapping)

    def reference(self, version: str) -> dict[str, Any]:
        """The drift reference statistics kept with a version."""
        with self.db.connect() as conn:
            raw = conn.execute(
                select(_VERSIONS.c.reference).where(_VERSIONS.c.version == version)
            ).scalar()
        return {} if raw is None else _decode_dict(raw)

    def promote(
        self, version: str, at: float, reason: str, event: tuple[str, str, dict[str, Any]]
    ) -> str | None:
        """Make ``version`` the champion in one transaction; return the previous champion.

        Retires the old champion, closes its served period, opens a new one, and writes
        the event, so that a crash leaves either the old state or the new one."""
        with self.db.begin() as conn:
            since = conn.execute(select(func.max(_ROWS.c.id))).scalar() or 0
            old = conn.execute(
                select(_VERSIONS.c.version).where(_VERSIONS.c.status == "champion")
            ).scalar()
            if old is not None:
                conn.execute(
                    update(_VERSIONS)
                    .where(_VERSIONS.c.version == old)
                    .values(status="retired", retired_at=at)
                )
                conn.execute(
                    update(_PERIODS)
                    .where(_PERIODS.c.version == old, _PERIODS.c.ended_at.is_(None))
                    .values(ended_at=at, end_reason=f"replaced by version {version}: {reason}")
                )
            conn.execute(
                update(_VERSIONS)
                .where(_VERSIONS.c.version == version)
                .values(status="champion", promoted_at=at, retired_at=None, since_row_id=since)
            )
            conn.execute(_PERIODS.insert().values(version=version, started_at=at, reason=reason))
            kind, message, data = event
            conn.execute(
                _EVENTS.insert().values(
                    at=at, kind=kind, message=message, data=_encode(data).decode()
                )
            )
            conn.execute(delete(_META).where(_META.c.key == "champion_changed_at"))
            conn.execute(_META.insert().values(key="champion_changed_at", value=repr(at)))
        return old

    def served_periods(self, limit: int = 100) -> list[ServedPeriod]:
        """The audit trail of which version served when, newest first."""
        with self.db.connect() as conn:
            got = conn.execute(select(_PERIODS).order_by(_PERIODS.c.id.desc()).limit(limit)).all()
        return [
            ServedPeriod(
                version=r.version,
                started_at=r.started_at,
                ended_at=r.ended_at,
                reason=r.reason,
                end_reason=r.end_reason,
            )
            for r in got
        ]


def _record(m: Any) -> ModelRecord:
    return ModelRecord(
        version=m["version"],
        run_id=m["run_id"],
        model_type=m["model_type"],
        status=m["status"],
        created_at=m["created_at"],
        promoted_at=m["promoted_at"],
        retired_at=m["retired_at"],
        metrics=_decode_dict(m["metrics"]),
        params=_decode_dict(m["params"]),
        reason=m["reason"],
        sha256=m["sha256"],
        since_row_id=m["since_row_id"],
    )
