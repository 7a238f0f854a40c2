"""Served predictions (kept for late feedback) and the feedback that labels them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlmodel import SQLModel

from continual.adapters.db import tables as _tables  # noqa: F401 - registers the tables
from continual.adapters.db.base import Db
from continual.adapters.db.meta import CategoryRepository
from continual.adapters.db.rows import ROW_COLUMNS, check_reuse, claim
from continual.core.errors import DuplicateBatch
from continual.core.frame import Frame, unpack
from continual.core.types import FeatureSchema

_TABLES = SQLModel.metadata.tables
_ROWS = _TABLES["labelled_rows"]
_PREDICTIONS = _TABLES["predictions"]
_FEEDBACK = _TABLES["feedback"]


class PredictionRepository:
    """The prediction log and feedback, which turns a prediction into a labelled row."""

    def __init__(self, db: Db, categories: CategoryRepository) -> None:
        self.db = db
        self.categories = categories

    def recent_features_of(self, schema: FeatureSchema, version: str, n: int) -> Frame:
        """Features of the newest ``n`` predictions ``version`` made (for the estimate)."""
        ph = self.db.ph
        got = self.db.fetchall(
            "SELECT feature_values FROM predictions WHERE model_version = "  # noqa: S608
            f"{ph} ORDER BY created_at DESC LIMIT {ph}",
            (version, int(n)),
        )
        return unpack(schema, [b for (b,) in reversed(got)], self.categories.levels(schema))

    def insert_predictions(self, params: list[tuple[str, float, str, bytes, str]]) -> None:
        """Insert (id, created_at, version, packed features, predicted label) tuples."""
        if params:
            cols = ("id", "created_at", "model_version", "feature_values", "prediction")
            with self.db.begin() as conn:
                self.db.executemany(conn, "predictions", cols, params)

    def get_predictions(self, ids: Sequence[str]) -> dict[str, tuple[str, bytes, str]]:
        """Map prediction id to (version, packed features, predicted label) for known ids."""
        out: dict[str, tuple[str, bytes, str]] = {}
        with self.db.connect() as conn:
            for start in range(0, len(ids), 900):
                chunk = list(ids[start : start + 900])
                got = conn.execute(
                    select(
                        _PREDICTIONS.c.id,
                        _PREDICTIONS.c.model_version,
                        _PREDICTIONS.c.feature_values,
                        _PREDICTIONS.c.prediction,
                    ).where(_PREDICTIONS.c.id.in_(chunk))
                ).all()
                out.update({pid: (v, bytes(f), p) for pid, v, f, p in got})
        return out

    def known_feedback(self, ids: Sequence[str]) -> set[str]:
        """The prediction ids that already have feedback."""
        found: set[str] = set()
        with self.db.connect() as conn:
            for start in range(0, len(ids), 900):
                chunk = list(ids[start : start + 900])
                found.update(
                    conn.execute(
                        select(_FEEDBACK.c.prediction_id).where(
                            _FEEDBACK.c.prediction_id.in_(chunk)
                        )
                    ).scalars()
                )
        return found

    def insert_feedback(
        self,
        at: float,
        items: list[tuple[str, str, bytes, str, bool]],
        batch_key: str | None = None,
        digest: str | None = None,
    ) -> None:
        """Store feedback as labelled rows scored by the predicting version, in one
        transaction. ``items`` are (prediction id, label, packed features, version, correct)."""
        key = None if batch_key is None else f"feedback:{batch_key}"
        try:
            with self.db.begin() as conn:
                claim(conn, key, digest, at, len(items))
                lo = conn.execute(select(func.max(_ROWS.c.id))).scalar() or 0
                self.db.executemany(
                    conn,
                    "labelled_rows",
                    ROW_COLUMNS,
                    [(at, "feedback", f, lab, v, c, pid, batch_key) for pid, lab, f, v, c in items],
                )
                row_of = dict(
                    conn.execute(
                        select(_ROWS.c.prediction_id, _ROWS.c.id).where(
                            _ROWS.c.id > lo, _ROWS.c.source == "feedback"
                        )
                    ).all()
                )
                self.db.executemany(
                    conn,
                    "feedback",
                    ("prediction_id", "received_at", "label", "row_id"),
                    [(pid, at, lab, row_of[pid]) for pid, lab, _f, _v, _c in items],
                )
        except DuplicateBatch:
            assert key is not None
            assert batch_key is not None
            assert digest is not None
            check_reuse(self.db, key, digest, batch_key)
            raise
