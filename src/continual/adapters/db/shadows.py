"""A challenger's shadow predictions: written in batches, labelled by feedback."""

from __future__ import annotations

from collections.abc import Sequence

from continual.adapters.db import tables as _tables  # noqa: F401 - registers the tables
from continual.adapters.db.base import Db


class ShadowRepository:
    """What a version in shadow predicted, and the evidence feedback makes of it."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def insert_shadow(self, params: list[tuple[str, str, float, str]]) -> None:
        """Insert (prediction id, version, created at, predicted label) tuples."""
        if params:
            cols = ("prediction_id", "version", "created_at", "prediction")
            with self.db.begin() as conn:
                self.db.executemany(conn, "shadow_predictions", cols, params)

    def label_shadow(self, at: float, items: Sequence[tuple[str, str, bool]]) -> None:
        """Give (prediction id, true label, champion was right) to the shadow rows of
        those predictions (ids without one change nothing)."""
        if not items:
            return
        ph = self.db.ph
        sql = (
            f"UPDATE shadow_predictions SET label = {ph}, champion_correct = {ph}, "  # noqa: S608
            f"labelled_at = {ph} WHERE prediction_id = {ph} AND label IS NULL"
        )
        with self.db.begin() as conn:
            conn.exec_driver_sql(sql, [(lab, ok, at, pid) for pid, lab, ok in items])

    def shadow_window(self, version: str, n: int) -> list[tuple[bool, bool]]:
        """(shadow right, champion right) on the newest ``n`` labelled rows of ``version``."""
        ph = self.db.ph
        got = self.db.fetchall(
            "SELECT prediction = label, champion_correct FROM shadow_predictions "  # noqa: S608
            f"WHERE version = {ph} AND labelled_at IS NOT NULL "
            f"ORDER BY labelled_at DESC, id DESC LIMIT {ph}",
            (version, int(n)),
        )
        return [(bool(s), bool(c)) for s, c in reversed(got)]
