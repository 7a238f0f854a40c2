"""Typed feature rows: one float64 matrix in schema order, categories as integer codes.

This is how features are stored (one packed block of float64 per row, see
docs/architecture.md) and how a training window, a drift sample or a prediction log
is handed around: arrays, never a dict per row. ``levels`` maps each categorical
feature's codes back to its values (code ``i`` is ``levels[j][i]``); a code, once given
to a value, never changes, so every slice and every later read share one table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from continual.core.types import FeatureSchema, FeatureValue, Label

Matrix = npt.NDArray[np.float64]
Levels = tuple[tuple[str, ...], ...]  # per feature, code -> value (empty for numeric)


def local_codes(column: Sequence[str]) -> tuple[npt.NDArray[np.intp], tuple[str, ...]]:
    """A categorical column of one request coded on its own: codes, and the sorted values
    they index (a frame's levels for that feature)."""
    table, codes = np.unique(np.asarray(column, dtype=object), return_inverse=True)
    return codes, tuple(table.tolist())


class Frame:
    """``n`` rows of features: ``values[i, j]`` is row i's feature j (a code if categorical)."""

    __slots__ = ("levels", "schema", "values")

    def __init__(self, schema: FeatureSchema, values: Matrix, levels: Levels) -> None:
        self.schema = schema
        self.values = values
        self.levels = levels

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def __getitem__(self, rows: slice) -> Frame:
        return Frame(self.schema, self.values[rows], self.levels)

    def __add__(self, other: Frame) -> Frame:
        """Rows of ``self`` then of ``other`` (read with the same or a newer level table)."""
        levels = max(self.levels, other.levels, key=lambda t: sum(map(len, t)))
        return Frame(self.schema, np.vstack([self.values, other.values]), levels)

    def column(self, name: str) -> Any:
        """A numeric feature as float64, a categorical one as an object array of str."""
        j = self.schema.names.index(name)
        if self.schema.features[j].kind == "numeric":
            return self.values[:, j]
        table = np.asarray(self.levels[j], dtype=object)
        return table[self.values[:, j].astype(np.intp)]

    def codes(self, name: str) -> npt.NDArray[np.intp]:
        """A categorical feature's codes."""
        return self.values[:, self.schema.names.index(name)].astype(np.intp)

    def rows(self) -> list[dict[str, FeatureValue]]:
        """The rows as dicts (an answer or a test; never a hot path)."""
        names = self.schema.names
        return [dict(zip(names, r, strict=True)) for r in self.tuples()]

    def tuples(self) -> list[tuple[FeatureValue, ...]]:
        """The rows as tuples in schema order, categories as their values."""
        columns = [self.column(n).tolist() for n in self.schema.names]
        return list(zip(*columns, strict=True))

    def blobs(self) -> list[bytes]:
        """Each row packed as its float64 bytes, the stored form."""
        flat = np.ascontiguousarray(self.values, dtype="<f8").tobytes()
        width = 8 * len(self.schema.features)
        return [flat[i : i + width] for i in range(0, len(flat), width)]


def unpack(schema: FeatureSchema, blobs: Sequence[bytes], levels: Levels) -> Frame:
    """The stored form back to a frame: one join and one ``frombuffer`` for any ``n``."""
    k = len(schema.features)
    values = np.frombuffer(b"".join(blobs), dtype="<f8").reshape(-1, k)
    return Frame(schema, values.astype(np.float64, copy=False), levels)


def pack_values(
    schema: FeatureSchema,
    values: Sequence[Sequence[FeatureValue]] | Matrix,
    code_of: Sequence[Mapping[str, int]],
) -> Matrix:
    """Validated rows as tuples in schema order to the matrix, categories by
    ``code_of[j][value]`` (all present).

    The numbers of every row become the matrix in one ``numpy.array`` call (a generator
    per column over dicts cost 3 times that at 10,000 rows of 20 features); only the
    categorical columns are looked up value by value."""
    n, k = len(values), len(schema.features)
    numeric = [j for j, f in enumerate(schema.features) if f.kind == "numeric"]
    if len(numeric) == k:
        return np.asarray(values, dtype=np.float64).reshape(n, k)
    out = np.empty((n, k), dtype=np.float64)
    if numeric:
        pick = itemgetter(*numeric) if len(numeric) > 1 else (lambda v: (v[numeric[0]],))
        out[:, numeric] = np.array([pick(v) for v in values], dtype=np.float64).reshape(n, -1)
    for j, f in enumerate(schema.features):
        if f.kind != "numeric":
            lookup = code_of[j]
            out[:, j] = np.fromiter((lookup[v[j]] for v in values), dtype=np.float64, count=n)  # type: ignore[index]
    return out


def levels_of(code_of: Sequence[Mapping[str, int]]) -> Levels:
    """Per feature, value -> code maps (``codes``) turned into code -> value tables."""
    out: list[tuple[str, ...]] = []
    for table in code_of:
        by_code = [""] * (max(table.values(), default=-1) + 1)
        for value, code in table.items():
            by_code[code] = value
        out.append(tuple(by_code))
    return tuple(out)


def labels_from(schema: FeatureSchema, stored: Sequence[str]) -> list[Label]:
    """Stored labels (their ``str``) back to the schema's label type."""
    if schema.label_kind == "int":
        return np.asarray(stored, dtype=np.str_).astype(np.int64).tolist()  # type: ignore[no-any-return]
    return list(stored)


def digest(blobs: Sequence[bytes], labels: Sequence[str]) -> str:
    """SHA-256 of a batch as stored: a reused idempotency key is checked against it."""
    h = hashlib.sha256(b"".join(blobs))  # the same digest as one update per block
    h.update(b"\x00".join(s.encode() for s in labels))
    return h.hexdigest()


class Labelled:
    """Labelled rows as read for training or rescoring: row ids, features and labels."""

    __slots__ = ("ids", "x", "y")

    def __init__(self, ids: npt.NDArray[np.int64], x: Frame, y: list[Label]) -> None:
        self.ids = ids
        self.x = x
        self.y = y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, rows: slice) -> Labelled:
        return Labelled(self.ids[rows], self.x[rows], self.y[rows])

    def __add__(self, other: Labelled) -> Labelled:
        return Labelled(np.concatenate([self.ids, other.ids]), self.x + other.x, self.y + other.y)


Rows = Frame | Sequence[Mapping[str, FeatureValue]]  # arrays, or dicts (a request, a test)


def column_of(rows: Rows, name: str) -> Any:
    """One feature of ``rows``: float64 for a numeric feature of a frame, else a sequence."""
    if isinstance(rows, Frame):
        return rows.column(name)
    return [r[name] for r in rows]
