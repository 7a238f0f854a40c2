"""Labelled rows: stored packed (``core.frame``), read back as arrays for the loop."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from continual.adapters.db import tables as _tables  # noqa: F401 - registers the tables
from continual.adapters.db.base import Db
from continual.adapters.db.meta import CategoryRepository
from continual.core.errors import Conflict, DuplicateBatch
from continual.core.frame import Frame, Labelled, labels_from, unpack
from continual.core.types import DataSummary, FeatureSchema, Label

_TABLES = SQLModel.metadata.tables
_ROWS = _TABLES["labelled_rows"]
_BATCHES = _TABLES["ingest_batches"]
ROW_COLUMNS = (
    "arrived_at",
    "source",
    "feature_values",
    "label",
    "scored_version",
    "correct",
    "prediction_id",
    "batch_key",
)


def claim(conn: Connection, key: str | None, digest: str | None, at: float, rows: int) -> None:
    """Record an idempotency key as the first write of its batch's own transaction.

    The key then exists exactly when the rows do: a duplicate raises out of ``begin()``,
    which rolls back (no SAVEPOINT: pysqlite opens no transaction before one, so its
    RELEASE would commit the key alone). A key reused for another batch is a 409."""
    if key is None:
        return
    try:
        conn.execute(_BATCHES.insert().values(key=key, at=at, rows=rows, digest=digest))
    except IntegrityError:
        raise DuplicateBatch(f"batch {key!r} was stored before", {"key": key}) from None


def stored_digest(db: Db, key: str) -> str | None:
    """The digest recorded with ``key`` (``None`` for a 0.x batch, which had none)."""
    with db.connect() as conn:
        return conn.execute(select(_BATCHES.c.digest).where(_BATCHES.c.key == key)).scalar()


def check_reuse(db: Db, key: str, digest: str, shown: str) -> None:
    """After a ``DuplicateBatch``: a 409 unless the stored batch is this very batch."""
    before = stored_digest(db, key)
    if before is not None and before != digest:
        raise Conflict(
            f"idempotency key {shown!r} was used before for a different batch; "
            "nothing was stored (use a new key for new data)",
            {"field": "idempotency-key", "reason": "key_reused"},
        )


class RowRepository:
    """The training pool: every labelled row, its score, its idempotency key."""

    def __init__(self, db: Db, categories: CategoryRepository) -> None:
        self.db = db
        self.categories = categories

    def insert_rows(
        self,
        at: float,
        source: str,
        blobs: list[bytes],
        labels: list[str],
        scored_version: str | None,
        correct: list[bool | None],
        batch_key: str | None = None,
        digest: str | None = None,
    ) -> int:
        """Insert packed rows in one transaction; return how many. ``DuplicateBatch`` if
        the key was seen with this digest, ``Conflict`` if with another."""
        params = [
            (at, source, b, lab, scored_version, c, None, batch_key)
            for b, lab, c in zip(blobs, labels, correct, strict=True)
        ]
        try:
            with self.db.begin() as conn:
                claim(conn, batch_key, digest, at, len(params))
                self.db.executemany(conn, "labelled_rows", ROW_COLUMNS, params)
        except DuplicateBatch:
            assert batch_key is not None
            assert digest is not None
            check_reuse(self.db, batch_key, digest, batch_key)
            raise
        return len(params)

    def summary(self) -> DataSummary:
        """Row count, label counts and first/last arrival."""
        with self.db.connect() as conn:
            n, first, last = conn.execute(
                select(func.count(), func.min(_ROWS.c.arrived_at), func.max(_ROWS.c.arrived_at))
            ).one()
            labels = conn.execute(select(_ROWS.c.label, func.count()).group_by(_ROWS.c.label)).all()
        counts = {str(lab): int(c) for lab, c in labels}
        return DataSummary(rows=int(n), labels=counts, first_at=first, last_at=last)

    def row_id_bounds(self) -> tuple[int, int]:
        """Smallest and largest labelled row id (0, 0 when empty)."""
        # two scalar subqueries: SQLite answers each from the primary key, where one
        # SELECT min(id), max(id) scans every row (0.3 ms against 450-800 ms at 1M rows)
        lo_q = select(func.min(_ROWS.c.id)).scalar_subquery()
        hi_q = select(func.max(_ROWS.c.id)).scalar_subquery()
        with self.db.connect() as conn:
            lo, hi = conn.execute(select(lo_q, hi_q)).one()
        return int(lo or 0), int(hi or 0)

    def _labelled(self, schema: FeatureSchema, got: list[tuple[int, bytes, str]]) -> Labelled:
        ids = np.fromiter((r[0] for r in got), dtype=np.int64, count=len(got))
        x = unpack(schema, [r[1] for r in got], self.categories.levels(schema))
        return Labelled(ids, x, labels_from(schema, [r[2] for r in got]))

    def recent_rows(self, schema: FeatureSchema, n: int) -> Labelled:
        """The ``n`` newest labelled rows, oldest first, as arrays."""
        sql = f"{self._select(schema)} ORDER BY id DESC LIMIT {self.db.ph}"
        return self._read(schema, sql, (int(n),), newest_first=True)

    def rows_after(self, schema: FeatureSchema, after_id: int) -> Labelled:
        """Every labelled row with an id above ``after_id``, oldest first, as arrays."""
        sql = f"{self._select(schema)} WHERE id > {self.db.ph} ORDER BY id"
        return self._read(schema, sql, (int(after_id),), newest_first=False)

    def count_between(self, lo: int, hi: int) -> int:
        """How many labelled rows have an id in ``[lo, hi]`` (a range of the primary key)."""
        with self.db.connect() as conn:
            got = conn.execute(
                select(func.count()).where(_ROWS.c.id >= lo, _ROWS.c.id <= hi)
            ).scalar()
        return int(got or 0)

    @staticmethod
    def _select(schema: FeatureSchema) -> str:
        # integer labels are cast by the database: no ``str`` made and parsed per row
        label = "CAST(label AS BIGINT)" if schema.label_kind == "int" else "label"
        return f"SELECT id, feature_values, {label} FROM labelled_rows"  # noqa: S608 - constant

    def _read(
        self, schema: FeatureSchema, sql: str, params: tuple[int], newest_first: bool
    ) -> Labelled:
        """The driver's cursor, a chunk of rows at a time (a million-row read holds one chunk
        of row tuples, not a million): each chunk is split into its columns by one ``zip``
        in C, its ids become one int64 array and its blocks one joined ``bytes``
        (``frombuffer`` of their join is the matrix)."""
        ids: list[npt.NDArray[np.int64]] = []
        blocks: list[bytes] = []
        labels: list[tuple[Label, ...]] = []
        for got in self.db.fetch_chunks(sql, params):
            if newest_first:
                got.reverse()
            chunk_ids, chunk_blocks, chunk_labels = zip(*got, strict=True)
            ids.append(np.array(chunk_ids, dtype=np.int64))
            blocks.append(b"".join(chunk_blocks))
            labels.append(chunk_labels)
        if newest_first:
            ids.reverse()
            blocks.reverse()
            labels.reverse()
        x = unpack(schema, blocks, self.categories.levels(schema))
        id_array = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
        return Labelled(id_array, x, list(chain.from_iterable(labels)))

    def rows_by_ids(self, schema: FeatureSchema, ids: Iterable[int]) -> Labelled:
        """Labelled rows by id (for replay samples), in id order."""
        wanted = sorted(set(ids))
        out: list[tuple[int, bytes, str]] = []
        with self.db.connect() as conn:
            for start in range(0, len(wanted), 900):
                chunk = wanted[start : start + 900]
                got = conn.execute(
                    select(_ROWS.c.id, _ROWS.c.feature_values, _ROWS.c.label).where(
                        _ROWS.c.id.in_(chunk)
                    )
                ).all()
                out.extend((int(i), f, lab) for i, f, lab in got)
        out.sort()
        return self._labelled(schema, out)

    def scored_window_ids(
        self, version: str, since_row_id: int, window: int
    ) -> list[tuple[int, bool]]:
        """The newest ``window`` (row id, correct) of ``version`` after ``since_row_id``,
        oldest first. Uses the (scored_version, id) index: O(window), not O(history)."""
        with self.db.connect() as conn:
            got = conn.execute(
                select(_ROWS.c.id, _ROWS.c.correct)
                .where(_ROWS.c.scored_version == version, _ROWS.c.id > since_row_id)
                .order_by(_ROWS.c.id.desc())
                .limit(window)
            ).all()
        return [(int(i), bool(c)) for i, c in reversed(got)]

    def recent_features(self, schema: FeatureSchema, n: int) -> Frame:
        """Features of the newest ``n`` labelled rows and ``n`` predictions (for drift)."""
        ph = self.db.ph
        rows = self.db.fetchall(
            f"SELECT feature_values FROM labelled_rows ORDER BY id DESC LIMIT {ph}",  # noqa: S608
            (int(n),),
        )
        preds = self.db.fetchall(
            f"SELECT feature_values FROM predictions ORDER BY created_at DESC LIMIT {ph}",  # noqa: S608
            (int(n),),
        )
        blobs = [b for (b,) in rows] + [b for (b,) in preds]
        return unpack(schema, blobs, self.categories.levels(schema))
