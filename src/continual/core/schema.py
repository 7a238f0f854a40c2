"""Validation of incoming rows against the feature schema (pure; no framework).

Every error names the row and the field, and a batch is judged whole before anything
is stored: the caller gets all of it or none of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from continual.core.errors import InvalidInput
from continual.core.frame import Frame, local_codes
from continual.core.types import (
    Feature,
    FeatureSchema,
    FeatureValue,
    Label,
    LabelKind,
    LabelledBatch,
)

MAX_NAME_LENGTH = 200
MAX_CATEGORY_LENGTH = 1000
MAX_MAGNITUDE = 2**53


def _kind_of(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return type(value).__name__


def _check_name(name: str, where: str) -> None:
    if not name or len(name) > MAX_NAME_LENGTH or name != name.strip():
        raise InvalidInput(
            f"{where}: feature names must be 1 to {MAX_NAME_LENGTH} characters "
            "without surrounding spaces",
            {"field": name},
        )


def infer_schema(first_row: Mapping[str, object], label: str | None, where: str) -> FeatureSchema:
    """Fix the schema from the first row seen: numbers are numeric, strings categorical."""
    features: list[Feature] = []
    label_kind: LabelKind = "int"
    for name, value in first_row.items():
        _check_name(name, where)
        if label is not None and name == label:
            label_kind = "str" if isinstance(value, str) else "int"
            continue
        kind = _kind_of(value)
        if kind == "number":
            features.append(Feature(name, "numeric"))
        elif kind == "string":
            features.append(Feature(name, "categorical"))
        else:
            raise InvalidInput(
                f"{where}.{name}: expected a number or a string, got {kind}", {"field": name}
            )
    if not features:
        raise InvalidInput(f"{where}: a row needs at least one feature", None)
    return FeatureSchema(tuple(features), label or "target", label_kind)


def check_features(row: Mapping[str, object], schema: FeatureSchema, where: str) -> None:
    """Raise ``InvalidInput`` unless ``row`` holds exactly the schema's features, well typed."""
    expected = len(schema.features)
    for feature in schema.features:
        value = row.get(feature.name, _MISSING)
        if value is _MISSING:
            raise InvalidInput(
                f"{where}: missing feature {feature.name!r}", {"field": feature.name}
            )
        _check_value(value, feature, where)
    if len(row) != expected:
        unknown = sorted(k for k in row if k not in schema.names)
        raise InvalidInput(
            f"{where}: unknown feature {unknown[0]!r}; expected {list(schema.names)}",
            {"field": unknown[0]},
        )


_MISSING = object()


def _check_value(value: object, feature: Feature, where: str) -> None:
    if feature.kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(
                f"{where}.{feature.name}: expected a number, got {_kind_of(value)}",
                {"field": feature.name},
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(
                f"{where}.{feature.name}: must be a finite number", {"field": feature.name}
            )
        # beyond 2**53 squares overflow the scaler and every later retrain fails on NaN
        if abs(value) > MAX_MAGNITUDE:
            raise InvalidInput(f"{where}.{feature.name}: number too large", {"field": feature.name})
    elif not isinstance(value, str):
        raise InvalidInput(
            f"{where}.{feature.name}: expected a string (categorical), got {_kind_of(value)}",
            {"field": feature.name},
        )
    elif len(value) > MAX_CATEGORY_LENGTH:
        raise InvalidInput(
            f"{where}.{feature.name}: longer than {MAX_CATEGORY_LENGTH} characters",
            {"field": feature.name},
        )


def check_label(value: object, schema: FeatureSchema, where: str) -> Label:
    """Return the label if it has the schema's label type, else raise ``InvalidInput``."""
    field = f"{where}.{schema.label}"
    if value is _MISSING or value is None:
        raise InvalidInput(f"{where}: missing label {schema.label!r}", {"field": schema.label})
    if schema.label_kind == "int":
        if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
            value = int(value)  # JSON does not tell 4014.0 from 4014
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(
                f"{field}: expected an integer label, got {_kind_of(value)}",
                {"field": schema.label},
            )
        if abs(value) > 2**53:
            raise InvalidInput(f"{field}: label too large", {"field": schema.label})
        return value
    if not isinstance(value, str) or not value:
        raise InvalidInput(
            f"{field}: expected a non-empty string label, got {_kind_of(value)}",
            {"field": schema.label},
        )
    return value


def validate_labelled(
    rows: Sequence[Mapping[str, object]], schema: FeatureSchema, max_rows: int
) -> LabelledBatch:
    """Validate labelled rows (features plus the label column) as one all-or-nothing batch."""
    check_batch_size(len(rows), max_rows)
    fast = _fast_labelled(rows, schema)
    if fast is not None:
        return fast
    out: list[tuple[FeatureValue, ...]] = []
    labels: list[Label] = []
    label_name = schema.label
    names = schema.names
    for i, row in enumerate(rows):
        where = f"rows[{i}]"
        label = check_label(row.get(label_name, _MISSING), schema, where)
        features = {k: v for k, v in row.items() if k != label_name}
        check_features(features, schema, where)
        normal = _normalise(features, schema)
        out.append(tuple(normal[n] for n in names))
        labels.append(label)
    return LabelledBatch(names, out, labels)


def validate_unlabelled(
    rows: Sequence[Mapping[str, object]], schema: FeatureSchema, max_rows: int, name: str = "rows"
) -> list[tuple[FeatureValue, ...]]:
    """Validate feature rows for prediction: each row's values in schema order (what the
    model encodes and the prediction log packs; no dict is made per row)."""
    check_batch_size(len(rows), max_rows)
    fast = _fast_columns(rows, schema, 0)
    if fast is not None:
        return fast
    out: list[tuple[FeatureValue, ...]] = []
    names = schema.names
    for i, row in enumerate(rows):
        check_features(row, schema, f"{name}[{i}]")
        normal = _normalise(row, schema)
        out.append(tuple(normal[n] for n in names))
    return out


# ---- the fast path ------------------------------------------------------------------------
# Checking value by value costs ~1 us a feature in Python: 40 % of a single-row predict and
# most of a 10,000-row batch. The fast path checks whole columns with builtins that loop in
# C (type sets, min, max, sum); a batch it cannot accept whole goes to the checks above,
# which name the first bad row and field. Both accept exactly the same batches.

_NUMBER_TYPES = frozenset({float, int})  # bool is its own type: refused, as above
_STR_TYPES = frozenset({str})


class _Plan:
    """What the fast path needs of a schema, computed once."""

    def __init__(self, schema: FeatureSchema) -> None:
        self.names = schema.names
        # itemgetter of one name returns the value, not a tuple: ask twice and keep one
        self.getter: Any = (
            itemgetter(*self.names)
            if len(self.names) > 1
            else itemgetter(self.names[0], self.names[0])
        )
        numeric = [i for i, f in enumerate(schema.features) if f.kind == "numeric"]
        categorical = [i for i, f in enumerate(schema.features) if f.kind != "numeric"]
        self.all_numeric = not categorical
        self.numeric: Any = _picker(numeric)
        self.categorical: Any = _picker(categorical)


def _picker(indexes: list[int]) -> Any:
    if not indexes:
        return None
    return itemgetter(*indexes) if len(indexes) > 1 else itemgetter(indexes[0], indexes[0])


@lru_cache(maxsize=8)
def _plan(schema: FeatureSchema) -> _Plan:
    return _Plan(schema)


def _numbers_ok(values: list[Any]) -> bool | None:
    """``None`` if any value fails, else whether some are ints (to be made floats)."""
    kinds = set(map(type, values))
    # sum is NaN or inf whenever one value is; min and max bound the magnitude
    try:
        if not kinds <= _NUMBER_TYPES or not math.isfinite(sum(values)):
            return None
    except OverflowError:  # an int too large for a float: the slow path names it
        return None
    if min(values) < -MAX_MAGNITUDE or max(values) > MAX_MAGNITUDE:
        return None
    return int in kinds


def _fast_columns(
    rows: Sequence[Mapping[str, object]], schema: FeatureSchema, extra: int
) -> list[tuple[Any, ...]] | None:
    """The rows' feature values in schema order, normalised, or ``None`` if any row needs
    the slow checks (``extra``: how many other keys, e.g. the label, each row holds)."""
    plan = _plan(schema)
    width = len(plan.names) + extra
    try:
        values = [plan.getter(row) for row in rows if len(row) == width]
    except (KeyError, TypeError):
        values = []
    if len(values) != len(rows):  # a row with a key missing, or one too many
        return None
    if len(plan.names) == 1:
        values = [v[:1] for v in values]
    if plan.all_numeric:
        ints = _numbers_ok(list(chain.from_iterable(values)))
        if ints is None:
            return None
        return [tuple(map(float, v)) for v in values] if ints else values
    if plan.numeric is not None:
        ints = _numbers_ok(list(chain.from_iterable(map(plan.numeric, values))))
        if ints is None:
            return None
        if ints:
            floats = frozenset(i for i, f in enumerate(schema.features) if f.kind == "numeric")
            values = [
                tuple(float(x) if i in floats else x for i, x in enumerate(v)) for v in values
            ]
    texts = list(chain.from_iterable(map(plan.categorical, values)))
    if set(map(type, texts)) != _STR_TYPES or max(map(len, texts)) > MAX_CATEGORY_LENGTH:
        return None
    return values


def _fast_labelled(
    rows: Sequence[Mapping[str, object]], schema: FeatureSchema
) -> LabelledBatch | None:
    label = schema.label
    try:
        labels: list[Any] = [row[label] for row in rows]
    except KeyError:
        return None
    if not _labels_ok(labels, schema):
        return None
    # a label column that is also a feature name (or a duplicate) is left to the slow path
    if label in schema.names:
        return None
    values = _fast_columns(rows, schema, 1)
    if values is None:
        return None
    return LabelledBatch(schema.names, values, labels)


def _labels_ok(labels: list[Any], schema: FeatureSchema) -> bool:
    """Whether every label is of the schema's kind (and an int one within 2**53)."""
    kinds = set(map(type, labels))
    if schema.label_kind == "int":
        return kinds == {int} and min(labels) >= -(2**53) and max(labels) <= 2**53
    return kinds == _STR_TYPES and all(labels)


def labelled_columns(
    header: Sequence[str], columns: Sequence[Sequence[Any]], schema: FeatureSchema
) -> LabelledBatch | None:
    """The fast path for columns already parsed (CSV: ``float`` mapped over a numeric
    column, ``str.strip`` over a categorical one, the label by its kind), checked a whole
    column at a time with no dict per row; ``None`` when anything needs the checks of
    ``validate_labelled``, which name the first bad row and field."""
    label = schema.label
    if label in schema.names or sorted(header) != sorted((*schema.names, label)):
        return None
    by_name = dict(zip(header, columns, strict=True))
    labels = list(by_name[label])
    if not _labels_ok(labels, schema):
        return None
    for f in schema.features:
        column = list(by_name[f.name])
        if f.kind == "numeric":
            if _numbers_ok(column) is not False:  # None: a bad value; True: an int left
                return None
        elif set(map(type, column)) != _STR_TYPES or max(map(len, column)) > MAX_CATEGORY_LENGTH:
            return None
    values = list(zip(*(by_name[n] for n in schema.names), strict=True))
    return LabelledBatch(schema.names, values, labels)


def check_batch_size(n: int, max_rows: int) -> None:
    """An empty batch is a 422; one over the cap a 413."""
    if n == 0:
        raise InvalidInput("rows: the batch is empty", {"field": "rows"})
    if n > max_rows:
        from continual.core.errors import PayloadTooLarge

        raise PayloadTooLarge(
            f"rows: {n} rows is over the limit of {max_rows} per request",
            {"field": "rows", "limit": max_rows},
        )


def _normalise(row: Mapping[str, object], schema: FeatureSchema) -> dict[str, FeatureValue]:
    out: dict[str, FeatureValue] = {}
    for feature in schema.features:
        value = row[feature.name]
        out[feature.name] = float(value) if feature.kind == "numeric" else str(value)  # type: ignore[arg-type]
    return out


def parse_schema_spec(spec: str, label: str) -> FeatureSchema:
    """Parse ``CONTINUAL_FEATURES`` (``"age:numeric,city:categorical"``; label type via
    ``target:int`` or ``target:str``)."""
    features: list[Feature] = []
    label_kind: LabelKind = "int"
    for part in spec.split(","):
        name, _, kind = part.strip().partition(":")
        name = name.strip()
        kind = kind.strip() or "numeric"
        if name == label:
            if kind not in ("int", "str"):
                raise ValueError(f"label {label!r}: type must be int or str, not {kind!r}")
            label_kind = "int" if kind == "int" else "str"
            continue
        if kind not in ("numeric", "categorical"):
            raise ValueError(f"feature {name!r}: kind must be numeric or categorical")
        _check_name(name, "CONTINUAL_FEATURES")
        features.append(Feature(name, "numeric" if kind == "numeric" else "categorical"))
    if not features:
        raise ValueError("no features given")
    return FeatureSchema(tuple(features), label, label_kind)


def parse_csv_value(raw: str, feature: Feature, where: str) -> FeatureValue:
    """Turn one CSV cell into a feature value of the schema's kind."""
    if feature.kind == "categorical":
        return raw
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(
            f"{where}.{feature.name}: expected a number, got {raw[:40]!r}", {"field": feature.name}
        ) from None
    if not math.isfinite(value):
        raise InvalidInput(
            f"{where}.{feature.name}: must be a finite number", {"field": feature.name}
        )
    if abs(value) > MAX_MAGNITUDE:
        raise InvalidInput(f"{where}.{feature.name}: number too large", {"field": feature.name})
    return value


def parse_csv_label(raw: str, kind: LabelKind, where: str, label: str) -> Label:
    """Turn one CSV label cell into an int or str label."""
    if kind == "str":
        if not raw:
            raise InvalidInput(f"{where}.{label}: empty label", {"field": label})
        return raw
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(
            f"{where}.{label}: expected an integer label, got {raw[:40]!r}", {"field": label}
        ) from None


# ---- columns -------------------------------------------------------------------------------
# A columnar batch is checked a column at a time with the same C-looping builtins as the
# fast path above; its first bad value is named as ``columns[i].<feature>``.


def validate_columns(
    columns: Mapping[str, Sequence[object]], schema: FeatureSchema, max_rows: int, name: str
) -> Frame:
    """A columnar batch (one list per feature) to a frame, categories coded locally."""
    unknown = sorted(set(columns) - set(schema.names))
    if unknown:
        raise InvalidInput(f"{name}: unknown feature {unknown[0]!r}", {"field": unknown[0]})
    missing = [n for n in schema.names if n not in columns]
    if missing:
        raise InvalidInput(f"{name}: missing feature {missing[0]!r}", {"field": missing[0]})
    n = len(columns[schema.names[0]])
    check_batch_size(n, max_rows)
    values = np.empty((n, len(schema.features)), dtype=np.float64)
    levels: list[tuple[str, ...]] = []
    for j, f in enumerate(schema.features):
        column = columns[f.name]
        if not isinstance(column, list) or len(column) != n:
            raise InvalidInput(
                f"{name}.{f.name}: expected a list of {n} values, as long as the first column",
                {"field": f.name},
            )
        if f.kind == "numeric":
            _numeric_column(column, f, name, values[:, j])
            levels.append(())
            continue
        if not set(map(type, column)) <= _STR_TYPES or max(map(len, column)) > MAX_CATEGORY_LENGTH:
            _name_bad(column, f, name)
        codes, table = local_codes(column)
        values[:, j] = codes
        levels.append(table)
    return Frame(schema, values, tuple(levels))


def _numeric_column(
    column: list[Any], feature: Feature, name: str, out: npt.NDArray[np.float64]
) -> None:
    """Check a numeric column and write it into ``out``. Floats alone are bounded on the
    array (``sum``, ``min`` and ``max`` over the list cost twice the type check); a column
    with ints is bounded on its exact values first, as an int beyond 2**53 rounds into
    range."""
    kinds = set(map(type, column))
    if not kinds <= _NUMBER_TYPES or (int in kinds and _numbers_ok(column) is None):
        _name_bad(column, feature, name)
    try:
        out[:] = column
    except OverflowError:  # an int too large for a float
        _name_bad(column, feature, name)
    if len(out) and (not np.isfinite(out).all() or np.abs(out).max() > MAX_MAGNITUDE):
        _name_bad(column, feature, name)


def _name_bad(column: Sequence[object], feature: Feature, name: str) -> None:
    """Raise the row checks' error for the first bad value of a column."""
    for i, value in enumerate(column):
        _check_value(value, feature, f"{name}[{i}]")
