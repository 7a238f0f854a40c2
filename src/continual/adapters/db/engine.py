"""Engine construction: the only place that knows SQLite from PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import SQLModel, create_engine

from continual.adapters.db import tables  # registers the tables on SQLModel.metadata

BUSY_TIMEOUT_MS = 5000

__all__ = ["BUSY_TIMEOUT_MS", "DatabaseError", "failure_kind", "make_engine", "tables"]

# The error a locked, full or failing database raises through any store call; the web
# layer maps it with ``failure_kind`` so no other module needs to know SQLAlchemy.
DatabaseError = OperationalError

# SQLite's own words (SQLITE_BUSY / SQLITE_LOCKED, SQLITE_FULL, SQLITE_IOERR) and
# PostgreSQL's for the same conditions.
_LOCKED = ("database is locked", "database table is locked", "database is busy", "lock timeout")
_FULL = ("database or disk is full", "disk is full", "no space left on device")
_IO = ("disk i/o error", "could not write", "could not extend file")


def failure_kind(exc: DatabaseError) -> str:
    """``locked``, ``full``, ``io`` or ``other``: what a client can do about a failure."""
    text = str(exc.orig if exc.orig is not None else exc).lower()
    for kind, words in (("locked", _LOCKED), ("full", _FULL), ("io", _IO)):
        if any(word in text for word in words):
            return kind
    return "other"


def make_engine(url: str, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    """Create the engine and the tables. SQLite gets WAL and a busy timeout."""
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
            pool_size=8,
            max_overflow=8,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.close()

    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)
    SQLModel.metadata.create_all(engine)
    return engine
