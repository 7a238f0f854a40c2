"""Request bodies decoded against the fixed schema, checked in C.

Once the schema is fixed, every row of ``POST /data`` must hold exactly its features and
the label, and every ``columns`` batch of ``POST /predict`` exactly one list per feature,
each value of a known type and range. A msgspec Struct made from the schema says so,
and the decoder checks it while it parses: no dict per row, no second pass of Python
checks over the values (together about half the cost of a 10,000-row batch before the
insert, and a third of a 1,000-row columnar prediction before the model). The Structs
accept a subset of what ``core.schema`` accepts, with the same normalised values (an int
feature becomes a float, as there). A body they refuse for any reason goes to the general
path, which names the first bad row and field: the answers, errors included, are the same.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import chain
from operator import attrgetter
from typing import Annotated, Any, Literal, NamedTuple

import msgspec
import numpy as np
from msgspec.structs import astuple

from continual.core.frame import Frame, local_codes
from continual.core.schema import MAX_CATEGORY_LENGTH, MAX_MAGNITUDE
from continual.core.types import FeatureSchema, LabelledBatch

# an int is bounded before it becomes a float: 2**53 + 1 rounds to 2**53, which is allowed
_NUMBER = (
    Annotated[int, msgspec.Meta(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)]
    | Annotated[float, msgspec.Meta(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)]
)
_CATEGORY = Annotated[str, msgspec.Meta(max_length=MAX_CATEGORY_LENGTH)]
_INT_LABEL = Annotated[int, msgspec.Meta(ge=-(2**53), le=2**53)]
_STR_LABEL = Annotated[str, msgspec.Meta(min_length=1)]


class RowDecoder:
    """Decodes ``{"rows": [...]}`` for one schema into a ``LabelledBatch``, or ``None``."""

    def __init__(self, schema: FeatureSchema) -> None:
        k = len(schema.features)
        # field names are v0..vk and "label" (any JSON key is a valid name this way)
        fields: list[tuple[str, Any]] = [
            (f"v{j}", _NUMBER if f.kind == "numeric" else _CATEGORY)
            for j, f in enumerate(schema.features)
        ]
        fields.append(("label", _INT_LABEL if schema.label_kind == "int" else _STR_LABEL))
        rename = {f"v{j}": f.name for j, f in enumerate(schema.features)}
        rename["label"] = schema.label
        row = msgspec.defstruct("Row", fields, rename=rename, forbid_unknown_fields=True, gc=False)
        body = msgspec.defstruct("Rows", [("rows", list[row])], forbid_unknown_fields=True)  # type: ignore[valid-type]
        self._decoder = msgspec.json.Decoder(body)
        self._names = schema.names
        self._k = k
        self._numeric = schema.all_numeric
        self._int_label = schema.label_kind == "int"
        self._numeric_at = frozenset(
            j for j, f in enumerate(schema.features) if f.kind == "numeric"
        )
        self._features = attrgetter(*[f"v{j}" for j in range(k)]) if k > 1 else None

    def decode(self, body: bytes) -> LabelledBatch | None:
        """The batch, or ``None`` if the body is not exactly such rows (or not JSON)."""
        try:
            rows: list[Any] = self._decoder.decode(body).rows  # type: ignore[attr-defined]
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None
        if not rows:
            return None  # the general path says what an empty batch is
        labels = [r.label for r in rows]
        n, k = len(rows), self._k
        if self._numeric and self._int_label:
            # every field is a number: one C pass over the rows' fields, label column dropped
            cells = np.fromiter(
                chain.from_iterable(map(astuple, rows)), np.float64, count=n * (k + 1)
            ).reshape(n, k + 1)
            return LabelledBatch(self._names, np.ascontiguousarray(cells[:, :k]), labels)
        values: list[tuple[Any, ...]] = (
            list(map(self._features, rows))
            if self._features is not None
            else [(r.v0,) for r in rows]
        )
        if self._numeric:
            matrix = np.fromiter(chain.from_iterable(values), np.float64, count=n * k)
            return LabelledBatch(self._names, matrix.reshape(n, k), labels)
        at = self._numeric_at
        if at and any(type(v[j]) is int for v in values for j in at):
            values = [tuple(float(x) if j in at else x for j, x in enumerate(v)) for v in values]
        return LabelledBatch(self._names, values, labels)


@lru_cache(maxsize=8)
def row_decoder(schema: FeatureSchema) -> RowDecoder | None:
    """The decoder for a schema, made once; ``None`` where the label is also a feature name
    (the general path refuses that batch and says why)."""
    if schema.label in schema.names:
        return None
    return RowDecoder(schema)


class ColumnBatch(NamedTuple):
    """A columnar ``POST /predict`` body, checked: its rows as a frame, and the answer's form."""

    frame: Frame
    output: str


class ColumnDecoder:
    """Decodes ``{"columns": {...}, "output": ...}`` for one schema, or says ``None``."""

    def __init__(self, schema: FeatureSchema) -> None:
        # field names are v0..vk (any JSON key is a valid name this way)
        fields: list[tuple[str, Any]] = [
            (f"v{j}", list[_NUMBER] if f.kind == "numeric" else list[_CATEGORY])
            for j, f in enumerate(schema.features)
        ]
        rename = {f"v{j}": f.name for j, f in enumerate(schema.features)}
        columns = msgspec.defstruct(
            "Columns", fields, rename=rename, forbid_unknown_fields=True, gc=False
        )
        body = msgspec.defstruct(
            "ColumnsRequest",
            [("columns", columns), ("output", Literal["rows", "columns"], "rows")],
            forbid_unknown_fields=True,
        )
        self._decoder = msgspec.json.Decoder(body)
        self._schema = schema
        self._categorical = frozenset(
            j for j, f in enumerate(schema.features) if f.kind != "numeric"
        )

    def decode(self, body: bytes, max_rows: int) -> ColumnBatch | None:
        """The checked batch, or ``None`` if the body is not exactly such columns of one
        length between 1 and ``max_rows`` (or not JSON)."""
        try:
            got: Any = self._decoder.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None
        cols: tuple[list[Any], ...] = astuple(got.columns)
        n = len(cols[0])
        if not 0 < n <= max_rows or any(len(c) != n for c in cols):
            return None  # the general path names the column, or the size
        values = np.empty((n, len(cols)), dtype=np.float64)
        levels: list[tuple[str, ...]] = [()] * len(cols)
        for j, column in enumerate(cols):
            if j in self._categorical:
                values[:, j], levels[j] = local_codes(column)
            else:
                values[:, j] = column
        return ColumnBatch(Frame(self._schema, values, tuple(levels)), got.output)


@lru_cache(maxsize=8)
def column_decoder(schema: FeatureSchema) -> ColumnDecoder:
    """The columns decoder for a schema, made once."""
    return ColumnDecoder(schema)
