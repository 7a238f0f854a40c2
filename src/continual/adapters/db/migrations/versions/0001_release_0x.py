"""The 0.x release's layout, exactly as its ``create_all`` made it.

A database that release created has these tables and no ``alembic_version``; start-up
stamps it at this revision and upgrades it from here.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the 0.x tables and indexes."""
    op.create_table(
        "labelled_rows",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("arrived_at", sa.Float, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("features", sa.String, nullable=False),
        sa.Column("label", sa.String, nullable=False),
        sa.Column("scored_version", sa.String(32)),
        sa.Column("correct", sa.Boolean),
        sa.Column("prediction_id", sa.String(64)),
        sa.Column("batch_key", sa.String(128)),
    )
    op.create_index("ix_rows_scored_version_id", "labelled_rows", ["scored_version", "id"])
    op.create_index("ix_labelled_rows_label", "labelled_rows", ["label"])
    op.create_index("ix_labelled_rows_batch_key", "labelled_rows", ["batch_key"])
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("model_version", sa.String(32), nullable=False),
        sa.Column("features", sa.String, nullable=False),
        sa.Column("prediction", sa.String, nullable=False),
    )
    op.create_index("ix_predictions_created_at", "predictions", ["created_at"])
    op.create_table(
        "feedback",
        sa.Column("prediction_id", sa.String(64), primary_key=True),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("label", sa.String, nullable=False),
        sa.Column("row_id", sa.Integer, nullable=False),
    )
    op.create_table(
        "model_versions",
        sa.Column("version", sa.String(32), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("model_type", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("promoted_at", sa.Float),
        sa.Column("retired_at", sa.Float),
        sa.Column("metrics", sa.String, nullable=False),
        sa.Column("params", sa.String, nullable=False),
        sa.Column("reason", sa.String, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("reference", sa.String, nullable=False),
        sa.Column("since_row_id", sa.Integer, nullable=False),
    )
    op.create_index("ix_model_versions_status", "model_versions", ["status"])
    op.create_table(
        "served_periods",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
        sa.Column("reason", sa.String, nullable=False),
        sa.Column("end_reason", sa.String),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("message", sa.String, nullable=False),
        sa.Column("data", sa.String, nullable=False),
    )
    op.create_index("ix_events_kind", "events", ["kind"])
    op.create_table(
        "checks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("decision", sa.String(24), nullable=False),
        sa.Column("accuracy", sa.Float),
        sa.Column("samples", sa.Integer, nullable=False),
        sa.Column("model_version", sa.String(32)),
        sa.Column("drift_share", sa.Float),
        sa.Column("reason", sa.String, nullable=False),
    )
    op.create_index("ix_checks_at", "checks", ["at"])
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String, nullable=False),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_table(
        "ingest_batches",
        sa.Column("key", sa.String(160), primary_key=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    """Drop everything (the database as it was before any release)."""
    for table in (
        "ingest_batches",
        "leases",
        "meta",
        "checks",
        "events",
        "served_periods",
        "model_versions",
        "feedback",
        "predictions",
        "labelled_rows",
    ):
        op.drop_table(table)
