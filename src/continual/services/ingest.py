"""Ingest: labelled rows (JSON, CSV, synthetic) and late feedback, test-then-train.

Every labelled row is scored by the champion live when it arrives (for feedback: by the
version that made the prediction) and stored with that score, so live accuracy is
prequential. A batch is validated whole before anything is written.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence

import msgspec
import numpy as np

from continual.adapters.models import synthetic
from continual.core.clock import Clock
from continual.core.errors import DuplicateBatch, InvalidInput
from continual.core.frame import Frame, digest, levels_of, pack_values
from continual.core.ports import CategoryPort, MetaPort, PredictionsPort, RowsPort, ShadowsPort
from continual.core.schema import (
    check_batch_size,
    check_label,
    infer_schema,
    labelled_columns,
    parse_csv_label,
    parse_csv_value,
    validate_labelled,
)
from continual.core.types import FeatureSchema, Label, LabelledBatch
from continual.services.csvbody import numeric_batch
from continual.services.holder import ModelHolder
from continual.services.predict import PredictionLog
from continual.services.quality import QualityCounter
from continual.services.shadow import ShadowQueue

MAX_GENERATE = 1_000_000
MAX_CONCEPT = 3


class IngestResult(msgspec.Struct, frozen=True):
    """What one ingest stored."""

    accepted: int
    scored_by: str | None
    correct: int | None
    duplicate: bool = False


class FeedbackResult(msgspec.Struct, frozen=True):
    """What one feedback batch did: accepted, unknown ids, ids that already had feedback."""

    accepted: int
    unknown: list[str]
    duplicate: list[str]
    duplicate_batch: bool = False


class IngestService:
    """Stores labelled data and feedback."""

    def __init__(
        self,
        meta: MetaPort,
        categories: CategoryPort,
        rows: RowsPort,
        predictions: PredictionsPort,
        holder: ModelHolder,
        log: PredictionLog,
        clock: Clock,
        label: str,
        max_rows: int,
    ) -> None:
        self.meta = meta
        self.categories = categories
        self.rows = rows
        self.predictions = predictions
        self.holder = holder
        self.log = log
        self.clock = clock
        self.label = label
        self.max_rows = max_rows
        self._schema: FeatureSchema | None = None
        self.quality: QualityCounter | None = None  # counts every row's data quality
        self.shadow: ShadowQueue | None = None  # feedback labels the shadow's predictions
        self.shadows: ShadowsPort | None = None

    def schema(self) -> FeatureSchema | None:
        """The feature schema (cached once fixed: it never changes afterwards)."""
        if self._schema is None:
            self._schema = self.meta.get_schema()
        return self._schema

    def known_schema(self) -> FeatureSchema | None:
        """The schema if it is already cached (no database read)."""
        return self._schema

    def fix_schema(self, schema: FeatureSchema) -> FeatureSchema:
        """Fix the schema if none is stored yet; return the one that holds."""
        self._schema = self.meta.fix_schema(schema)
        return self._schema

    # ---- labelled rows ---------------------------------------------------------------
    def add_rows(
        self,
        rows: Sequence[Mapping[str, object]],
        source: str = "data",
        batch_key: str | None = None,
    ) -> IngestResult:
        """Validate and store labelled JSON rows (features plus the label column)."""
        check_batch_size(len(rows), self.max_rows)
        schema = self.schema()
        fixing = schema is None
        if schema is None:
            schema = infer_schema(rows[0], self.label, "rows[0]")
        batch = validate_labelled(rows, schema, self.max_rows)
        if fixing:
            held = self.fix_schema(schema)
            if held != schema:  # another writer fixed a different schema first
                batch = validate_labelled(rows, held, self.max_rows)
        return self._store(batch, source, batch_key)

    def add_checked(self, batch: LabelledBatch, batch_key: str | None = None) -> IngestResult:
        """Store labelled rows already checked against the fixed schema (``web/rowtype``:
        in the decoder, in C); only the batch's size is left to check."""
        check_batch_size(len(batch.labels), self.max_rows)
        schema = self.schema()
        if schema is None or schema.names != batch.names:
            # the schema never changes once fixed, so this is a caller's bug, not input
            raise ValueError("add_checked: the batch was not checked against the held schema")
        return self._store(batch, "data", batch_key)

    def add_csv(self, body: bytes, batch_key: str | None = None) -> IngestResult:
        """Validate and store labelled rows from CSV with a header row."""
        schema = self.schema()
        plain = None if schema is None else numeric_batch(body, schema, self.max_rows)
        if plain is not None:  # numbers only: parsed in C++ (services/csvbody.py)
            return self._store(plain, "data", batch_key)
        try:
            textual = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInput("body: CSV must be UTF-8 text", {"field": "body"}) from None
        reader = csv.reader(io.StringIO(textual))
        header = next(reader, None)
        if not header:
            raise InvalidInput("body: CSV needs a header row", {"field": "header"})
        header = [h.strip() for h in header]
        seen: set[str] = set()
        for h in header:
            if h in seen:
                raise InvalidInput(f"header: duplicate column {h!r}", {"field": h})
            seen.add(h)
        if self.label not in seen:
            raise InvalidInput(
                f"header: missing label column {self.label!r}", {"field": self.label}
            )
        cells = [r for r in reader if r]
        check_batch_size(len(cells), self.max_rows)
        for i, r in enumerate(cells):
            if len(r) != len(header):
                raise InvalidInput(f"rows[{i}]: {len(r)} cells, expected {len(header)}", {"row": i})
        schema = self.schema()
        fixing = schema is None
        if schema is None:
            schema = _infer_csv(header, cells, self.label)
        columns = _typed_columns(header, cells, schema)
        fast = None if columns is None else labelled_columns(header, columns, schema)
        batch = fast or validate_labelled(_typed_rows(header, cells, schema), schema, self.max_rows)
        if fixing:
            held = self.fix_schema(schema)
            if held != schema:
                batch = validate_labelled(_typed_rows(header, cells, held), held, self.max_rows)
        return self._store(batch, "data", batch_key)

    def generate(self, n_samples: int, n_features: int, concept: int, seed: int) -> IngestResult:
        """Store synthetic labelled rows from ``make_classification`` for one concept."""
        if not 1 <= n_samples <= MAX_GENERATE:
            raise InvalidInput(f"n_samples: must be 1 to {MAX_GENERATE}", {"field": "n_samples"})
        if not 2 <= n_features <= 100:
            raise InvalidInput("n_features: must be 2 to 100", {"field": "n_features"})
        if not 0 <= concept <= MAX_CONCEPT:
            raise InvalidInput(f"concept: must be 0 to {MAX_CONCEPT}", {"field": "concept"})
        if not 0 <= seed < 2**32:
            raise InvalidInput("seed: must be 0 to 2**32-1", {"field": "seed"})
        features, labels = synthetic(n_samples, n_features, concept, seed)
        rows: list[dict[str, object]] = [
            {**f, self.label: y} for f, y in zip(features, labels, strict=True)
        ]
        saved = self.max_rows
        self.max_rows = max(saved, n_samples)
        try:
            return self.add_rows(rows, source="generate")
        finally:
            self.max_rows = saved

    def _store(self, batch: LabelledBatch, source: str, batch_key: str | None) -> IngestResult:
        schema = self.schema()
        assert schema is not None  # validation fixed it
        labels = list(map(str, batch.labels))
        categorical = not schema.all_numeric
        rows = batch.values if categorical and isinstance(batch.values, list) else []
        codes = self.categories.codes(schema, rows)
        x = Frame(schema, pack_values(schema, batch.values, codes), levels_of(codes))
        blobs = x.blobs()
        if self.quality is not None:
            self.quality.observe(schema, x.values, codes)
        bundle = self.holder.current
        scored_by: str | None = None
        correct: list[bool | None] = [None] * len(batch.labels)
        n_correct = 0
        if bundle is not None and bundle.schema == schema:
            # scored from the packed matrix: whole columns, no second pass over the dicts
            predicted = bundle.model.labels_of(bundle.model.predict_rows(x))
            hits = np.asarray(predicted) == np.asarray(batch.labels)  # one C loop, not 2 per row
            correct, n_correct = hits.tolist(), int(np.count_nonzero(hits))
            scored_by = bundle.version
        key_digest = None if batch_key is None else digest(blobs, labels)
        try:
            self.rows.insert_rows(
                self.clock.now(), source, blobs, labels, scored_by, correct, batch_key, key_digest
            )
        except DuplicateBatch:
            return IngestResult(0, None, None, duplicate=True)
        return IngestResult(len(batch.labels), scored_by, n_correct if scored_by else None)

    # ---- feedback ---------------------------------------------------------------------
    def feedback(
        self, items: Sequence[tuple[str, object]], batch_key: str | None = None
    ) -> FeedbackResult:
        """Attach true labels to earlier predictions; unknown ids are reported, not fatal."""
        check_batch_size(len(items), self.max_rows)
        schema = self.schema()
        if schema is None:
            raise InvalidInput("items: no data and no predictions yet", {"field": "items"})
        labels: dict[str, Label] = {}
        for i, (pid, label) in enumerate(items):
            where = f"items[{i}]"
            if not isinstance(pid, str) or not 1 <= len(pid) <= 64:
                raise InvalidInput(
                    f"{where}.prediction_id: 1 to 64 characters", {"field": "prediction_id"}
                )
            labels[pid] = check_label(label, schema, where)
        self.log.flush()  # make buffered predictions visible to the lookup
        ids = list(labels)
        known = self.predictions.get_predictions(ids)
        already = self.predictions.known_feedback(ids)
        unknown = [pid for pid in ids if pid not in known]
        duplicate = [pid for pid in ids if pid in already]
        rows: list[tuple[str, str, bytes, str, bool]] = []
        for pid in ids:
            if pid in known and pid not in already:
                version, features, predicted = known[pid]
                text = str(labels[pid])
                rows.append((pid, text, features, version, text == predicted))
        if rows:
            key_digest = None
            if batch_key is not None:
                key_digest = digest([r[2] for r in rows], [f"{r[0]}={r[1]}" for r in rows])
            now = self.clock.now()
            try:
                self.predictions.insert_feedback(now, rows, batch_key, key_digest)
            except DuplicateBatch:
                return FeedbackResult(0, [], [], duplicate_batch=True)
            if self.shadows is not None and self.holder.trial is not None:
                # the shadow's predictions of these rows, scored beside the champion's
                if self.shadow is not None:
                    self.shadow.drain()
                self.shadows.label_shadow(now, [(pid, lab, ok) for pid, lab, _f, _v, ok in rows])
        return FeedbackResult(len(rows), unknown, duplicate)


def _infer_csv(header: list[str], cells: list[list[str]], label: str) -> FeatureSchema:
    first: dict[str, object] = {}
    for j, name in enumerate(header):
        column = [r[j] for r in cells]
        if name == label:
            first[name] = 0 if all(_is_int(c) for c in column) else "x"
        else:
            first[name] = 0.0 if all(_is_number(c) for c in column) else "x"
    return infer_schema(first, label, "header")


def _typed_rows(
    header: list[str], cells: list[list[str]], schema: FeatureSchema
) -> list[dict[str, object]]:
    kinds = {f.name: f for f in schema.features}
    out: list[dict[str, object]] = []
    for i, r in enumerate(cells):
        where = f"rows[{i}]"
        row: dict[str, object] = {}
        for name, raw in zip(header, r, strict=True):
            if name == schema.label:
                row[name] = parse_csv_label(raw.strip(), schema.label_kind, where, name)
            elif name in kinds:
                row[name] = parse_csv_value(raw.strip(), kinds[name], where)
            else:
                row[name] = raw  # unknown column: validation names it
        out.append(row)
    return out


def _typed_columns(
    header: list[str], cells: list[list[str]], schema: FeatureSchema
) -> list[list[object]] | None:
    """The cells parsed a column at a time, in header order (``float``, ``int`` and
    ``str.strip`` mapped over each column loop in C, ~3x ``_typed_rows``); ``None`` when a
    cell does not parse or a column is not in the schema, and ``_typed_rows`` then names
    the first bad cell."""
    kinds = {f.name: f.kind for f in schema.features}
    columns: list[list[object]] = []
    try:
        for name, column in zip(header, zip(*cells, strict=True), strict=True):
            if name == schema.label:
                # int() and float() strip the spaces that the row-by-row parse strips first
                parsed: list[object] = (
                    list(map(int, column))
                    if schema.label_kind == "int"
                    else list(map(str.strip, column))
                )
                if not all(parsed) and schema.label_kind == "str":
                    return None  # an empty label: the row-by-row parse names it
            elif kinds.get(name) == "numeric":
                parsed = list(map(float, column))
            elif kinds.get(name) == "categorical":
                parsed = list(map(str.strip, column))
            else:
                return None
            columns.append(parsed)
    except ValueError:
        return None
    return columns


def _is_number(raw: str) -> bool:
    try:
        return math.isfinite(float(raw))
    except ValueError:
        return False


def _is_int(raw: str) -> bool:
    try:
        int(raw.strip())
    except ValueError:
        return False
    return True
