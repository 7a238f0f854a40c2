"""Alembic migrations of our database: ``versions/`` holds one file per schema change."""
