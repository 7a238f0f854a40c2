"""Schema migrations (Alembic): bring any earlier release's database to the newest layout.

Several replicas may start at once: one migrates while the others wait, under a lock
that the database's own host arbitrates. On PostgreSQL that is a session advisory lock
(``pg_advisory_lock``), held on the very connection the migration runs on; SQLite has a
single host by nature, so an exclusive ``flock`` on a file beside the database does.
Whoever gets the lock second finds the schema at head and does nothing.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from continual.adapters.db.engine import make_engine

_SCRIPTS = Path(__file__).with_name("migrations")
# any constant; every replica of every release must use the same one
ADVISORY_LOCK_KEY = 0x636F6E74  # "cont"
RELEASE_0X = "0001"  # the layout that databases made before migrations existed have


def _config(conn: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    cfg.attributes["connection"] = conn
    return cfg


def head() -> str:
    """The newest revision this code knows."""
    found = ScriptDirectory(str(_SCRIPTS)).get_current_head()
    assert found is not None
    return found


def current(engine: Engine) -> str | None:
    """The revision the database is at (``None``: empty; ``0001`` if made by 0.x)."""
    with engine.connect() as conn:
        return _revision(conn)


def _revision(conn: Connection) -> str | None:
    rev = MigrationContext.configure(conn).get_current_revision()
    if rev is None and inspect(conn).has_table("labelled_rows"):
        return RELEASE_0X  # a 0.x database: its tables, no alembic_version
    return rev


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A connection held under the migration lock."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
            conn.commit()
            try:
                yield conn
            finally:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
                conn.commit()
        return
    database = engine.url.database
    lock_path = Path(f"{database}.migrate-lock") if database else None
    with open(lock_path, "a+b") if lock_path else _nothing() as fh:
        if fh is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # released when the file closes
        with engine.connect() as conn:
            yield conn


@contextmanager
def _nothing() -> Iterator[None]:
    yield None  # an in-memory SQLite database: one process by definition


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate to ``revision`` under the lock; return (before, after)."""
    with _locked(engine) as conn:
        before = _revision(conn)
        cfg = _config(conn)
        if before == RELEASE_0X and MigrationContext.configure(conn).get_current_revision() is None:
            command.stamp(cfg, RELEASE_0X)
        command.upgrade(cfg, revision)
        conn.commit()
        return before, _revision(conn)


def downgrade(engine: Engine, revision: str) -> str | None:
    """Migrate down to ``revision`` under the lock; return where it ends."""
    with _locked(engine) as conn:
        command.downgrade(_config(conn), revision)
        conn.commit()
        return _revision(conn)


__all__ = ["current", "downgrade", "head", "make_engine", "upgrade"]
