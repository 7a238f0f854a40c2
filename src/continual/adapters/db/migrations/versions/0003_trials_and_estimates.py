"""Shadow predictions and estimated accuracy.

``shadow_predictions``: what a challenger in shadow predicted on live requests, and,
once feedback comes, the true label and whether the champion was right on the same
row. ``checks`` gains the estimated accuracy of each check and the rows it rests on.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``shadow_predictions`` and the estimate columns of ``checks``."""
    op.create_table(
        "shadow_predictions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("prediction_id", sa.String(64), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("prediction", sa.String, nullable=False),
        sa.Column("label", sa.String, nullable=True),
        sa.Column("champion_correct", sa.Boolean, nullable=True),
        sa.Column("labelled_at", sa.Float, nullable=True),
    )
    op.create_index("ix_shadow_prediction_id", "shadow_predictions", ["prediction_id"])
    op.create_index("ix_shadow_version_labelled", "shadow_predictions", ["version", "labelled_at"])
    with op.batch_alter_table("checks") as batch:
        batch.add_column(sa.Column("estimated_accuracy", sa.Float, nullable=True))
        batch.add_column(
            sa.Column("estimated_samples", sa.Integer, nullable=False, server_default="0")
        )


def downgrade() -> None:
    """Back to 0002: drop them (shadow evidence and estimates are lost)."""
    with op.batch_alter_table("checks") as batch:
        batch.drop_column("estimated_samples")
        batch.drop_column("estimated_accuracy")
    op.drop_index("ix_shadow_version_labelled", "shadow_predictions")
    op.drop_index("ix_shadow_prediction_id", "shadow_predictions")
    op.drop_table("shadow_predictions")
