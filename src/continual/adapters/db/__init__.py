"""Storage adapter (SQLModel / SQLAlchemy): the only code that knows about tables.

SQLite by default, PostgreSQL for scale-out; no dialect-specific SQL outside ``engine``.
Tables never leave this package: callers get the Structs of ``continual.core.types``.
"""

from continual.adapters.db.engine import make_engine
from continual.adapters.db.store import Store

__all__ = ["Store", "make_engine"]
