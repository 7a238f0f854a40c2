"""Predictions: validate, score with the current champion, log for later feedback.

The request path does no database work: each prediction is appended to an in-memory
log that a background task flushes in batches. When the log is full the service sheds
load with a 503 instead of growing without bound.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from itertools import repeat
from typing import Any, NamedTuple

from continual.core.clock import Clock
from continual.core.errors import Conflict, Unavailable
from continual.core.frame import Frame, Matrix, pack_values
from continual.core.ports import CategoryPort, PredictionsPort
from continual.core.schema import validate_columns, validate_unlabelled
from continual.core.types import FeatureSchema, FeatureValue, Label, Prediction
from continual.services.canary import answering
from continual.services.holder import ModelBundle, ModelHolder
from continual.services.quality import QualityCounter
from continual.services.shadow import ShadowQueue

# (prediction id, created at, version, feature values in schema order, predicted label):
# what validation made, kept as it is; the flush packs the values (off the request path)
Entry = tuple[str, float, str, tuple[FeatureValue, ...], str]


class PredictionLog:
    """A bounded in-memory buffer of served predictions, flushed in batches."""

    def __init__(
        self, predictions: PredictionsPort, categories: CategoryPort, max_pending: int
    ) -> None:
        self.predictions = predictions
        self.categories = categories
        self.schema: FeatureSchema | None = None  # fixed before the first prediction
        self.max_pending = max_pending
        self._pending: list[Entry] = []
        self._frames: list[tuple[list[str], float, str, Frame, list[str]]] = []
        self._frame_rows = 0
        self._flush_lock = threading.Lock()
        self._writing = 0  # entries taken out by a flush that is still writing them
        self.flushed = 0
        self.failed_flushes = 0
        self.quality: QualityCounter | None = None  # counts every prediction's data quality

    def __len__(self) -> int:
        # a write blocked by a lock still holds its batch in memory: count it, so the
        # buffer never holds more than ``max_pending``
        return len(self._pending) + self._frame_rows + self._writing

    def room(self, n: int) -> None:
        """Raise ``Unavailable`` (503) when ``n`` more entries would overflow the buffer."""
        if len(self) + n > self.max_pending:
            raise Unavailable(
                "prediction log backlog is full; retry shortly",
                {"pending": len(self), "limit": self.max_pending},
            )

    def add(self, entries: list[Entry], schema: FeatureSchema) -> None:
        """Append entries (list.extend is atomic under the GIL)."""
        self.schema = schema
        self._pending.extend(entries)

    def add_one(self, entry: Entry, schema: FeatureSchema) -> None:
        """Append one entry (list.append is atomic under the GIL)."""
        self.schema = schema
        self._pending.append(entry)

    def add_frame(
        self, ids: list[str], at: float, version: str, frame: Frame, labels: list[str]
    ) -> None:
        """Append a columnar batch: its rows become value tuples in the flush, off the
        request path."""
        self.schema = frame.schema
        self._frames.append((ids, at, version, frame, labels))
        self._frame_rows += len(ids)

    def flush(self) -> int:
        """Write everything pending in one transaction; return how many rows."""
        with self._flush_lock:
            batch, self._pending = self._pending, []
            frames, self._frames, self._frame_rows = self._frames, [], 0
            n = len(batch) + sum(len(f[0]) for f in frames)
            if not n:
                return 0
            self._writing = n
            try:
                assert self.schema is not None  # set by the first ``add``
                params: list[tuple[str, float, str, bytes, str]] = []
                if batch:
                    # columns of the batch, by zip in C: no Python loop over the rows
                    ids, ats, versions, rows, labels = zip(*batch, strict=True)
                    blobs = self._packed(self.schema, rows)
                    params += zip(ids, ats, versions, blobs, labels, strict=True)
                for frame_ids, at, version, frame, frame_labels in frames:
                    blobs = self._packed(frame.schema, frame)
                    params += zip(frame_ids, repeat(at), repeat(version), blobs, frame_labels)
                self.predictions.insert_predictions(params)
            except Exception:
                # keep them for the next flush rather than lose them
                self._pending[:0] = batch
                self._frames[:0] = frames
                self._frame_rows += n - len(batch)
                self.failed_flushes += 1
                raise
            finally:
                self._writing = 0
            self.flushed += n
            return n

    def _packed(
        self, schema: FeatureSchema, rows: Sequence[Sequence[FeatureValue]] | Frame
    ) -> list[bytes]:
        """Rows as stored blocks, counted for data quality on the way. An all-numeric frame
        is its matrix already: no value tuple is made for it (a 1,000-row batch's tuples
        and their repacking cost more of the flush than its insert's parameters)."""
        if isinstance(rows, Frame) and schema.all_numeric:
            values, codes = rows.values, self.categories.codes(schema, [])
        else:
            # a frame's codes are the request's own: its values are re-coded as stored
            tuples = rows.tuples() if isinstance(rows, Frame) else rows
            codes = self.categories.codes(schema, tuples)
            values = pack_values(schema, tuples, codes)
        if self.quality is not None:
            self.quality.observe(schema, values, codes)
        return Frame(schema, values, ()).blobs()


def prediction_ids(now: float, n: int) -> list[str]:
    """``n`` new prediction ids: the time in milliseconds (12 hex digits), then 64 random
    bits. Time-ordered keys are appended to the end of the log's primary-key index; random
    ones land all over it, and each insert then costs 3 to 4 times more once the table
    outgrows the page cache (measured: 25 against 95 us a row at 280,000 rows)."""
    prefix = f"{int(now * 1000) & 0xFFFFFFFFFFFF:012x}"
    rand = os.urandom(8 * n).hex()
    return [prefix + rand[i : i + 16] for i in range(0, 16 * n, 16)]


class PredictService:
    """Serves predictions from the model holder."""

    def __init__(
        self,
        holder: ModelHolder,
        log: PredictionLog,
        clock: Clock,
        max_rows: int,
        shadow: ShadowQueue | None = None,
    ) -> None:
        self.holder = holder
        self.log = log
        self.clock = clock
        self.max_rows = max_rows
        self.shadow = shadow
        self.served: dict[str, int] = {}

    def predict_one(
        self,
        features: Mapping[str, object],
        key: str | None = None,
        name: str = "features",
        pinned: bool = False,
    ) -> Prediction:
        """One row (``features``), as ``predict([features], name)`` answers it, made with
        no numpy call for a linear champion and no object the answer does not need
        (``key``, ``pinned``: as ``score`` takes them)."""
        now = self.clock.now()
        pid = prediction_ids(now, 1)[0]
        bundle = self.holder.current if pinned else answering(self.holder, key, pid)
        if bundle is None:
            raise Conflict("no model is loaded yet: add data and retrain", {"status": "no_model"})
        self.log.room(1)
        values = validate_unlabelled([features], bundle.schema, self.max_rows, name)[0]
        model = bundle.model
        proba = model.predict_one(values)
        best = max(range(len(proba)), key=proba.__getitem__)  # the first of equals, as argmax
        version = bundle.version
        trial = self.holder.trial
        if trial is not None and trial.kind == "shadow" and self.shadow is not None:
            self.shadow.offer(trial.bundle.version, [values], [pid])
        keys = model.class_keys
        self.log.add_one((pid, now, version, values, keys[best]), bundle.schema)
        self.served[version] = self.served.get(version, 0) + 1
        return Prediction(
            model.classes[best], dict(zip(keys, proba, strict=True)), proba[best], version, pid
        )

    def predict(
        self, rows: Sequence[Mapping[str, object]], name: str = "rows", key: str | None = None
    ) -> tuple[str, list[Prediction]]:
        """Predict a batch; return the version used and one ``Prediction`` per row."""
        scored = self.score(rows, name, key)
        keys = scored.bundle.model.class_keys
        out = [
            Prediction(label, dict(zip(keys, p, strict=True)), conf, scored.version, pid)
            for label, p, conf, pid in zip(
                scored.labels, scored.proba.tolist(), scored.confidence, scored.ids, strict=True
            )
        ]
        return scored.version, out

    def score(
        self,
        rows: Sequence[Mapping[str, object]] | Frame,
        name: str = "rows",
        key: str | None = None,
        pinned: bool = False,
    ) -> Scored:
        """Validate and score rows (or an already validated frame) and log every prediction;
        the answer's arrays are whole-batch numpy, one urandom call for all the ids.

        ``key`` (``X-Continual-Key``): which caller asks, for a canary's sticky share;
        ``pinned``: the caller named the champion's version, so no canary answers."""
        n = len(rows)
        now = self.clock.now()
        pids = prediction_ids(now, n)
        bundle = (
            self.holder.current if pinned else answering(self.holder, key, pids[0] if pids else "")
        )
        if bundle is None:
            # 409, not 503: the request is fine and the service is up; what it asks for
            # waits on the service's state (a first model), which a retry alone won't change
            raise Conflict("no model is loaded yet: add data and retrain", {"status": "no_model"})
        self.log.room(n)
        clean: list[tuple[FeatureValue, ...]] | Frame = (
            rows
            if isinstance(rows, Frame)
            else validate_unlabelled(rows, bundle.schema, self.max_rows, name)
        )
        proba = bundle.model.predict_values(clean)
        classes = bundle.model.classes
        version = bundle.version
        best = proba.argmax(axis=1).tolist()
        trial = self.holder.trial
        if trial is not None and trial.kind == "shadow" and self.shadow is not None:
            self.shadow.offer(trial.bundle.version, clean, pids)
        label_text = [str(c) for c in classes]
        if isinstance(clean, Frame):
            self.log.add_frame(pids, now, version, clean, [label_text[b] for b in best])
        else:
            entries: list[Entry] = [
                (pid, now, version, row, label_text[b])
                for pid, row, b in zip(pids, clean, best, strict=True)
            ]
            self.log.add(entries, bundle.schema)
        self.served[version] = self.served.get(version, 0) + n
        labels = [classes[b] for b in best]
        return Scored(bundle, version, proba, labels, proba.max(axis=1).tolist(), pids)

    def columns_of(self, columns: Mapping[str, Sequence[object]], name: str = "columns") -> Frame:
        """A columnar batch validated against the live schema (409 before a first model)."""
        bundle = self.holder.current
        if bundle is None:
            raise Conflict("no model is loaded yet: add data and retrain", {"status": "no_model"})
        return validate_columns(columns, bundle.schema, self.max_rows, name)


class Scored(NamedTuple):
    """One scored batch, as arrays: what every answer format is made from."""

    bundle: ModelBundle
    version: str
    proba: Matrix
    labels: list[Label]
    confidence: list[float]
    ids: list[str]

    def columns(self) -> dict[str, Any]:
        """The columnar answer's ``columns``: one list per output, probabilities per class."""
        keys = self.bundle.model.class_keys
        return {
            "prediction": self.labels,
            "confidence": self.confidence,
            "prediction_id": self.ids,
            "probabilities": {k: self.proba[:, j].tolist() for j, k in enumerate(keys)},
        }
