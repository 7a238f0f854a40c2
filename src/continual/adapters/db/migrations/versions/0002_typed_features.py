"""Typed features and the idempotency digest.

Features move from one JSON text per row to one packed block per row (float64 values in
schema order, categories as codes in the new ``categories`` table); labels and
predicted labels from JSON to their plain text (``1``, ``cat``); ``ingest_batches``
gains the digest of its batch (``NULL`` for the batches 0.x stored). Self-contained on
purpose: it must convert a 0.x database the same way whatever the code does later.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CHUNK = 20_000


def _schema(conn: sa.Connection) -> dict[str, Any] | None:
    raw = conn.execute(sa.text("SELECT value FROM meta WHERE key = 'feature_schema'")).scalar()
    return None if raw is None else dict(json.loads(raw))


def _chunks(conn: sa.Connection, table: str, columns: str) -> Any:
    """Rows of ``table`` in primary-key order, ``CHUNK`` at a time (bounded memory)."""
    last: Any = None
    while True:
        where = "" if last is None else "WHERE id > :last "
        got = conn.execute(
            sa.text(f"SELECT id, {columns} FROM {table} {where}ORDER BY id LIMIT {CHUNK}"),  # noqa: S608
            {} if last is None else {"last": last},
        ).all()
        if not got:
            return
        yield got
        last = got[-1][0]


def _plain(raw: str) -> str:
    return str(json.loads(raw))


def upgrade() -> None:
    """0.x JSON rows to packed blocks, labels to plain text, and the batch digest."""
    op.create_table(
        "categories",
        sa.Column("feature", sa.String(200), primary_key=True),
        sa.Column("code", sa.Integer, primary_key=True),
        sa.Column("value", sa.String(1000), nullable=False),
    )
    op.create_index("ux_categories_feature_value", "categories", ["feature", "value"], unique=True)
    with op.batch_alter_table("ingest_batches") as batch:
        batch.add_column(sa.Column("digest", sa.String(64)))
    for table in ("labelled_rows", "predictions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("feature_values", sa.LargeBinary))
    conn = op.get_bind()
    schema = _schema(conn)
    if schema is not None:
        features = schema["features"]
        codes: dict[str, dict[str, int]] = {
            f["name"]: {} for f in features if f["kind"] == "categorical"
        }

        def packed(raw: str) -> bytes:
            row = json.loads(raw)
            values = [
                float(row[f["name"]])
                if f["kind"] == "numeric"
                else float(codes[f["name"]].setdefault(row[f["name"]], len(codes[f["name"]])))
                for f in features
            ]
            return np.asarray(values, dtype="<f8").tobytes()

        for chunk in _chunks(conn, "labelled_rows", "features, label"):
            conn.execute(
                sa.text("UPDATE labelled_rows SET feature_values = :x, label = :y WHERE id = :id"),
                [{"x": packed(f), "y": _plain(y), "id": i} for i, f, y in chunk],
            )
        for chunk in _chunks(conn, "predictions", "features, prediction"):
            conn.execute(
                sa.text(
                    "UPDATE predictions SET feature_values = :x, prediction = :y WHERE id = :id"
                ),
                [{"x": packed(f), "y": _plain(y), "id": i} for i, f, y in chunk],
            )
        fb = conn.execute(sa.text("SELECT prediction_id, label FROM feedback")).all()
        if fb:
            conn.execute(
                sa.text("UPDATE feedback SET label = :y WHERE prediction_id = :id"),
                [{"y": _plain(y), "id": i} for i, y in fb],
            )
        rows = [
            {"f": name, "c": code, "v": value}
            for name, table in codes.items()
            for value, code in table.items()
        ]
        if rows:
            conn.execute(sa.text("INSERT INTO categories VALUES (:f, :c, :v)"), rows)
    for table in ("labelled_rows", "predictions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("features")
            batch.alter_column("feature_values", existing_type=sa.LargeBinary, nullable=False)


def downgrade() -> None:
    """Packed blocks back to 0.x JSON rows and JSON labels; the digest is dropped."""
    for table in ("labelled_rows", "predictions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("features", sa.String))
    conn = op.get_bind()
    schema = _schema(conn)
    if schema is not None:
        features = schema["features"]
        levels: dict[str, dict[int, str]] = {}
        for name, code, value in conn.execute(
            sa.text("SELECT feature, code, value FROM categories")
        ).all():
            levels.setdefault(name, {})[int(code)] = value
        as_str = schema["label_kind"] == "str"

        def label(raw: str) -> str:
            return json.dumps(raw if as_str else int(raw), ensure_ascii=False)

        def unpacked(blob: bytes) -> str:
            values = np.frombuffer(blob, dtype="<f8").tolist()
            row = {
                f["name"]: v if f["kind"] == "numeric" else levels[f["name"]][int(v)]
                for f, v in zip(features, values, strict=True)
            }
            return json.dumps(row, ensure_ascii=False, separators=(",", ":"))

        for chunk in _chunks(conn, "labelled_rows", "feature_values, label"):
            conn.execute(
                sa.text("UPDATE labelled_rows SET features = :x, label = :y WHERE id = :id"),
                [{"x": unpacked(f), "y": label(y), "id": i} for i, f, y in chunk],
            )
        for chunk in _chunks(conn, "predictions", "feature_values, prediction"):
            conn.execute(
                sa.text("UPDATE predictions SET features = :x, prediction = :y WHERE id = :id"),
                [{"x": unpacked(f), "y": label(y), "id": i} for i, f, y in chunk],
            )
        fb = conn.execute(sa.text("SELECT prediction_id, label FROM feedback")).all()
        if fb:
            conn.execute(
                sa.text("UPDATE feedback SET label = :y WHERE prediction_id = :id"),
                [{"y": label(y), "id": i} for i, y in fb],
            )
    for table in ("labelled_rows", "predictions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("feature_values")
            batch.alter_column("features", existing_type=sa.String, nullable=False)
    with op.batch_alter_table("ingest_batches") as batch:
        batch.drop_column("digest")
    op.drop_index("ux_categories_feature_value", "categories")
    op.drop_table("categories")
