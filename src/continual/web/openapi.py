"""Corrections to the generated OpenAPI document, so that it says what the server does.

Litestar's generator gets a few things wrong for our msgspec Structs, and some rules are
only known at run time. ``corrected`` returns the generated document with:

- request bodies described by msgspec itself (the decoder's own schema): unknown fields
  refused (``additionalProperties: false``) and bounds kept inside ``anyOf`` branches
  (Litestar drops ``ge=0`` and hoists bounds out of ``T | None``);
- the rules the handlers check: a batch holds 1 to ``CONTINUAL_MAX_BATCH_ROWS`` rows,
  ``/predict`` takes exactly one of ``features`` and ``rows``, labels and numbers within
  +-2**53, category strings up to 1,000 characters, optional bodies optional;
- once the feature schema is fixed (by ``CONTINUAL_FEATURES`` or by the first data), the
  exact rows (names, kinds, label type) of ``/predict``, ``/data``, ``/feedback`` and
  ``/generate``; before that, what the first data may hold;
- every status a route can answer: 422 for bad parameters, 503 for a busy database,
  507 for a full disk, 429 where a rate limit applies.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType

from continual.core.types import FeatureSchema
from continual.settings import Settings
from continual.web import ratelimit, schemas

_VALUE = Schema(one_of=[Schema(type=OpenAPIType.NUMBER), Schema(type=OpenAPIType.STRING)])
_ROWS = Schema(
    type=OpenAPIType.OBJECT,
    required=["rows"],
    properties={
        "rows": Schema(
            type=OpenAPIType.ARRAY,
            min_items=1,
            items=Schema(type=OpenAPIType.OBJECT, additional_properties=_VALUE, min_properties=2),
        )
    },
    additional_properties=False,
)


@dataclass
class DataOperation(Operation):
    """``POST /data`` takes JSON rows or CSV text, which Litestar cannot infer."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="Labelled rows: features plus the label column (default `target`).",
            content={
                "application/json": OpenAPIMediaType(
                    schema=_ROWS,
                    example={"rows": [{"feature1": 0.1, "feature2": -1.3, "target": 1}]},
                ),
                "text/csv": OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.STRING),
                    example="feature1,feature2,target\n0.1,-1.3,1\n",
                ),
            },
        )


JSON = dict[str, Any]
REF = "#/components/schemas/{name}"
LIMIT = 2**53  # core.schema refuses integers (features and labels) beyond it
MAX_CATEGORY = 1000  # core.schema.MAX_CATEGORY_LENGTH
MAX_NAME = 200  # core.schema.MAX_NAME_LENGTH
OPTIONAL_BODIES = {("post", "/retrain"), ("post", "/models/{version}/promote")}
WRITES = {"/data", "/feedback", "/generate", "/check", "/retrain", "/models/{version}/promote"}
_ERRORS = {
    400: "Malformed request (e.g. invalid JSON, nested too deeply)",
    422: "Invalid input; `detail` names the field or row",
    429: "Over a rate limit; `Retry-After` says when to try again",
    503: "Not ready, or the database is busy; `Retry-After` says when to try again",
    507: "No space left to store the request; nothing was stored",
}


def _request_structs() -> list[type[msgspec.Struct]]:
    """The request bodies: every Struct in ``web.schemas`` that refuses unknown fields."""
    found: list[type[msgspec.Struct]] = []
    for value in vars(schemas).values():
        if (
            isinstance(value, type)
            and issubclass(value, msgspec.Struct)
            and value.__struct_config__.forbid_unknown_fields
        ):
            found.append(value)
    return found


def _number() -> JSON:
    return {"type": "number", "minimum": -LIMIT, "maximum": LIMIT}


def _label(kind: str) -> JSON:
    if kind == "int":
        return {"type": "integer", "minimum": -LIMIT, "maximum": LIMIT}
    return {"type": "string", "minLength": 1}


def _row(features: FeatureSchema | None, labelled: bool, label: str) -> JSON:
    """One row: exact once the schema is fixed, else what the first data may hold."""
    if features is None:
        values: JSON = {"anyOf": [_number(), {"type": "string", "maxLength": MAX_CATEGORY}]}
        row: JSON = {
            "type": "object",
            "description": "feature name -> number (numeric) or string (categorical)"
            + (", plus the label column; the first row fixes the schema" if labelled else ""),
            "additionalProperties": values,
            # core.schema: names of 1 to 200 characters without surrounding spaces
            "propertyNames": {"minLength": 1, "maxLength": MAX_NAME, "pattern": r"^\S(.*\S)?$"},
            "minProperties": 2 if labelled else 1,
        }
        if labelled:
            row["properties"] = {label: {"anyOf": [_label("int"), _label("str")]}}
            row["required"] = [label]
        return row
    props: JSON = {
        f.name: _number() if f.kind == "numeric" else {"type": "string", "maxLength": MAX_CATEGORY}
        for f in features.features
    }
    required = [f.name for f in features.features]
    if labelled:
        props[features.label] = _label(features.label_kind)
        required.append(features.label)
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


def _batch(row: JSON, max_rows: int) -> JSON:
    return {"type": "array", "items": row, "minItems": 1, "maxItems": max_rows}


def _predict_body(features: FeatureSchema | None, max_rows: int, label: str) -> JSON:
    row = _row(features, labelled=False, label=label)
    one = {"features": row, "rows": {"type": "null"}}
    many = {"rows": _batch(row, max_rows), "features": {"type": "null"}}
    return {
        "title": "PredictRequest",
        "description": "One row in `features` or a batch in `rows` (exactly one of them).",
        "oneOf": [
            {
                "type": "object",
                "properties": one,
                "required": ["features"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": many,
                "required": ["rows"],
                "additionalProperties": False,
            },
        ],
    }


def _generate_features(features: FeatureSchema | None) -> JSON | None:
    """``n_features`` a configured schema allows: ``feature1..N`` numeric, or none at all."""
    if features is None:
        return None
    names = [f.name for f in features.features]
    synthetic = names == [f"feature{i + 1}" for i in range(len(names))] and features.all_numeric
    if synthetic and features.label_kind == "int" and 2 <= len(names) <= 100:
        return {"type": "integer", "enum": [len(names)], "default": len(names)}
    return {"type": "integer", "enum": []}  # nothing generated can fit this schema


def _csv_body(features: FeatureSchema | None) -> JSON:
    """CSV text; with a configured schema, a pattern for a header row and well-typed rows.

    The pattern describes one plain spelling (the schema's column order, ``\\n`` or
    ``\\r\\n`` line ends, decimal numbers); the server also takes other orders, quoting
    and spaces around cells."""
    body: JSON = {"type": "string", "description": "a header row, then one labelled row per line"}
    if features is None:
        return body
    number = r"-?[0-9]{1,15}(\.[0-9]{1,6})?"
    category = r"[A-Za-z0-9_]{0,40}"
    label = r"-?[0-9]{1,15}" if features.label_kind == "int" else r"[A-Za-z0-9_]{1,40}"
    cells = [number if f.kind == "numeric" else category for f in features.features] + [label]
    names = [f.name for f in features.features] + [features.label]
    if not all(n.replace("_", "").isalnum() for n in names):
        return body  # names that would need quoting or escaping: no pattern
    header = ",".join(names)
    row = ",".join(cells)
    body["pattern"] = f"^{header}(\\r?\\n{row}){{1,100}}(\\r?\\n)?$"
    return body


def correct_components(doc: JSON, settings: Settings, features: FeatureSchema | None) -> None:
    """Request bodies from msgspec's own schema, plus the rules the handlers check."""
    comps: JSON = doc.setdefault("components", {}).setdefault("schemas", {})
    _, generated = msgspec.json.schema_components(_request_structs(), ref_template=REF)
    comps.update(generated)
    max_rows = settings.max_batch_rows
    label = settings.label_column
    comps["PredictRequest"] = _predict_body(features, max_rows, label)
    feedback = comps["FeedbackRequest"]["properties"]
    feedback["items"].update(minItems=1, maxItems=max_rows)
    item = comps["FeedbackItem"]["properties"]
    label_kind = None if features is None else features.label_kind
    description = item["label"].get("description", "the true label")
    item["label"] = (
        {"anyOf": [_label("int"), _label("str")]} if label_kind is None else _label(label_kind)
    )
    item["label"]["description"] = description
    if label_kind is not None and "Prediction" in comps:
        comps["Prediction"]["properties"]["prediction"] = _label(label_kind)
    rows = _batch(_row(features, labelled=True, label=label), max_rows)
    comps["DataRequest"]["properties"]["rows"] = rows
    comps["GenerateRequest"]["properties"]["n_samples"]["maximum"] = settings.max_generate_rows
    n_features = _generate_features(features)
    if n_features is not None:
        comps["GenerateRequest"]["properties"]["n_features"] = n_features


def _error(code: int) -> JSON:
    return {
        "description": _ERRORS[code],
        "content": {"application/json": {"schema": {"$ref": REF.format(name="ErrorBody")}}},
    }


def correct_operations(doc: JSON, settings: Settings) -> None:
    """Optional bodies, header schemas and the statuses each route can answer."""
    limits = ratelimit.limits_of(settings)
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            responses: JSON = op["responses"]
            protected = bool(op.get("security"))
            params = op.get("parameters", [])
            for param in params:
                if param.get("in") == "header":
                    # a header is a string or absent, never null
                    param["schema"] = {
                        "type": "string",
                        "minLength": param["schema"].get("minLength", 0),
                        "maxLength": param["schema"].get("maxLength", 128),
                    }
            if (method, path) in OPTIONAL_BODIES and "requestBody" in op:
                op["requestBody"]["required"] = False
            wanted: set[int] = set()
            if params or "requestBody" in op:
                wanted |= {400, 422}
            if path in WRITES and method == "post":
                wanted |= {503, 507}
            if protected and (
                limits.auth_failures
                or (limits.writes and path in WRITES)
                or (limits.predict and method == "post" and ratelimit.predicts(path))
            ):
                wanted.add(429)
            for code in sorted(wanted):
                responses.setdefault(str(code), _error(code))


def corrected(doc: JSON, settings: Settings, features: FeatureSchema | None) -> JSON:
    """A corrected copy of the generated document for the feature schema in force."""
    out = copy.deepcopy(doc)
    correct_components(out, settings, features)
    correct_operations(out, settings)
    data = out.get("paths", {}).get("/data", {}).get("post")
    if data is not None:
        content = data["requestBody"]["content"]
        content["application/json"]["schema"] = {"$ref": REF.format(name="DataRequest")}
        content["text/csv"]["schema"] = _csv_body(features)
    return out
