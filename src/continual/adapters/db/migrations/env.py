"""Alembic's entry point: migrations run on the connection ``migrate`` hands over (under
its lock), never on one Alembic opens itself."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=True, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
