"""Storage adapter (SQLModel / SQLAlchemy / Alembic): the only code that knows tables.

SQLite by default, PostgreSQL for scale-out; no dialect-specific SQL outside ``engine``
and ``migrate``. One small repository per noun, each implementing a port of
``core.ports``; ``open_database`` migrates and wires them. Tables never leave this
package, and neither do SQLAlchemy's errors (``base.translate``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from continual.adapters.db import migrate
from continual.adapters.db.base import Db
from continual.adapters.db.engine import make_engine
from continual.adapters.db.events import EventRepository
from continual.adapters.db.leases import LeaseRepository
from continual.adapters.db.meta import CategoryRepository, MetaRepository
from continual.adapters.db.predictions import PredictionRepository
from continual.adapters.db.rows import RowRepository
from continual.adapters.db.shadows import ShadowRepository
from continual.adapters.db.versions import VersionRepository

__all__ = ["Database", "open_database"]


@dataclass(frozen=True)
class Database:
    """The repositories of one database, and what the process does with it as a whole."""

    db: Db
    meta: MetaRepository
    categories: CategoryRepository
    rows: RowRepository
    predictions: PredictionRepository
    versions: VersionRepository
    events: EventRepository
    leases: LeaseRepository
    shadows: ShadowRepository

    def ping(self) -> None:
        """Raise a ``core.errors`` storage error unless the database answers."""
        with self.db.connect() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        """Close every pooled connection."""
        self.db.engine.dispose()


def open_database(url: str, migrate_now: bool = True) -> Database:
    """Connect, bring the schema to head (under the migration lock), wire repositories.

    ``migrate_now=False`` (the training worker, whose parent migrated) skips the upgrade."""
    engine = make_engine(url)
    if migrate_now:
        migrate.upgrade(engine)
    db = Db(engine)
    categories = CategoryRepository(db)
    return Database(
        db=db,
        meta=MetaRepository(db),
        categories=categories,
        rows=RowRepository(db, categories),
        predictions=PredictionRepository(db, categories),
        versions=VersionRepository(db),
        events=EventRepository(db),
        leases=LeaseRepository(db),
        shadows=ShadowRepository(db),
    )
