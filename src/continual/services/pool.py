"""The training worker's copy of the pool: the newest labelled rows as arrays, kept
between retrains so that a retrain reads only the rows that arrived since the last one.

Labelled rows are only ever appended (nothing deletes or updates their features or
labels), so the rows above the newest id held are all a retrain has not seen, but for
one case: on PostgreSQL an id is drawn before its transaction commits, so a batch in
flight during a read can commit later below the newest id read (SQLite's one writer
commits in id order). Such a row's id is among the newest: before it trusts its copy,
the cache counts the database's rows among the newest ``RECOUNT_IDS`` ids it holds (a
primary-key range count, O(that range) and not O(pool)) and reads afresh on a
difference.

Arrays handed out are views of the cache's buffers. The buffers only grow at their
end, into rows no view covers, and are replaced (never shifted in place) when they
grow or drop old rows, so a view stays valid for as long as its caller holds it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from continual.core.frame import Frame, Labelled, Levels
from continual.core.ports import RowsPort
from continual.core.types import FeatureSchema, Label

RECOUNT_IDS = 65_536  # ids drawn by batches in flight at a read: far fewer than this


class PoolCache:
    """The newest rows of ``rows``, at most twice the largest count asked for."""

    def __init__(self, rows: RowsPort) -> None:
        self.rows = rows
        self.schema: FeatureSchema | None = None
        self.ids: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.values: npt.NDArray[np.float64] = np.zeros((0, 0), dtype=np.float64)
        self.labels: list[Label] = []
        self.levels: Levels = ()
        self.keep = 0
        self.whole = False  # the copy starts at the pool's oldest row
        self.cold_reads = 0  # full reads made (a test and the benchmark look)

    @property
    def size(self) -> int:
        """How many rows the copy holds (its buffers have room for more)."""
        return len(self.labels)

    def row_id_bounds(self) -> tuple[int, int]:
        return self.rows.row_id_bounds()

    def rows_by_ids(self, schema: FeatureSchema, ids: Iterable[int]) -> Labelled:
        return self.rows.rows_by_ids(schema, ids)

    def recent_rows(self, schema: FeatureSchema, n: int) -> Labelled:
        """The ``n`` newest labelled rows, oldest first: the new ones read, the rest held."""
        n = max(0, int(n))
        if not self._usable(schema, n):
            self._read_all(schema, n)
        else:
            self._append(self.rows.rows_after(schema, int(self.ids[self.size - 1])))
        self.keep = max(self.keep, n)
        if self.size > 2 * self.keep:
            self._drop_oldest(self.size - self.keep)
        start = max(0, self.size - n)
        ids, values = self.ids[start : self.size], self.values[start : self.size]
        ids.flags.writeable = values.flags.writeable = False  # views of what later reads extend
        frame = Frame(schema, values, self.levels)
        return Labelled(ids, frame, self.labels[start : self.size])

    def _usable(self, schema: FeatureSchema, n: int) -> bool:
        if self.schema != schema or self.size == 0:
            return False
        if n > self.size and not self.whole:
            return False  # older rows than the copy holds are wanted
        hi = int(self.ids[self.size - 1])
        lo = max(int(self.ids[0]), hi - RECOUNT_IDS + 1)
        held = self.size - int(np.searchsorted(self.ids[: self.size], lo))
        return self.rows.count_between(lo, hi) == held

    def _read_all(self, schema: FeatureSchema, n: int) -> None:
        got = self.rows.recent_rows(schema, n)
        self.cold_reads += 1
        self.schema = schema
        # room for as many rows again: the next retrains' rows go in without a copy of
        # the pool (the room is address space only until rows are written to it)
        n_got, k = len(got), len(schema.features)
        self.ids = np.empty(2 * n_got, dtype=np.int64)
        self.values = np.empty((2 * n_got, k), dtype=np.float64)
        self.ids[:n_got] = got.ids
        self.values[:n_got] = got.x.values
        self.labels = list(got.y)
        self.levels = got.x.levels
        lo, _ = self.rows.row_id_bounds()
        self.whole = self.size < n or self.size == 0 or int(self.ids[0]) <= lo

    def _append(self, new: Labelled) -> None:
        self.levels = new.x.levels  # codes never change; the newest table decodes all
        k = len(new)
        if not k:
            return
        need = self.size + k
        if need > len(self.ids):
            # room for as many rows again, so the next retrains' rows go in without a copy
            # (a bulk import of 850,000 rows into a pool of 160,000 had left none, and the
            # next 10,000 rows copied the million held: 0.33 s of a 2.1 s retrain)
            capacity = 2 * need
            ids = np.empty(capacity, dtype=np.int64)
            values = np.empty((capacity, self.values.shape[1]), dtype=np.float64)
            ids[: self.size] = self.ids[: self.size]
            values[: self.size] = self.values[: self.size]
            self.ids, self.values = ids, values
        self.ids[self.size : need] = new.ids
        self.values[self.size : need] = new.x.values
        self.labels.extend(new.y)

    def _drop_oldest(self, k: int) -> None:
        self.ids = self.ids[k : self.size].copy()
        self.values = self.values[k : self.size].copy()
        self.labels = self.labels[k:]
        self.whole = False
