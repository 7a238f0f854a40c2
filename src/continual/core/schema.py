"""Validation of incoming rows against the feature schema (pure; no framework).

Every error names the row and the field, and a batch is judged whole before anything
is stored: the caller gets all of it or none of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from continual.core.errors import InvalidInput
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
    out_rows: list[dict[str, FeatureValue]] = []
    labels: list[Label] = []
    label_name = schema.label
    for i, row in enumerate(rows):
        where = f"rows[{i}]"
        label = check_label(row.get(label_name, _MISSING), schema, where)
        features = {k: v for k, v in row.items() if k != label_name}
        check_features(features, schema, where)
        out_rows.append(_normalise(features, schema))
        labels.append(label)
    return LabelledBatch(out_rows, labels)


def validate_unlabelled(
    rows: Sequence[Mapping[str, object]], schema: FeatureSchema, max_rows: int, name: str = "rows"
) -> list[dict[str, FeatureValue]]:
    """Validate feature rows for prediction."""
    check_batch_size(len(rows), max_rows)
    out: list[dict[str, FeatureValue]] = []
    for i, row in enumerate(rows):
        check_features(row, schema, f"{name}[{i}]")
        out.append(_normalise(row, schema))
    return out


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
