"""Measuring the champion: live accuracy over its window, where its error rate rose, and
data drift of recent inputs against its training reference.

Live accuracy is the champion's accuracy on the newest ``eval_window`` labelled rows
that arrived after it went live. The drift detector (``core.detect.change_point``) looks
four windows back over the same rows and locates where the error rate rose, so that the
retrain can judge its challenger on rows of the new concept only. Reading them is one
indexed query (test-then-train flags stored with each row): O(window), not O(history).
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from continual.core import drift
from continual.core.detect import ALARM_Z, change_point
from continual.core.ports import RowsPort, VersionsPort
from continual.core.types import ServiceStatus
from continual.services.holder import ModelBundle, ModelHolder
from continual.settings import Settings


class Measurement(msgspec.Struct, frozen=True):
    """The champion's live numbers."""

    model_version: str | None
    accuracy: float | None
    samples: int
    detector_fired: bool
    detector_at: int | None
    change_row_id: int | None = None
    detector_row_id: int | None = None  # the row where the fired detector put the change


# The detector looks further back than the accuracy window (still O(window), not
# O(history)): a mild rise in the error rate needs rows from before it to show.
DETECT_WINDOW_FACTOR = 4
# a change is declared at ALARM_Z (see core.detect), and located for the retrain at a
# lower bar once a retrain is due for another reason (the threshold, a refresh)
DETECT_Z = ALARM_Z
LOCATE_Z = 3.0
# the detector's z accounts for how few rows there are, so it may judge a young
# champion (promoted a few hundred rows ago) before the accuracy threshold can
DETECT_MIN_ROWS = 100


class Measurer:
    """Reads the champion's numbers (blocking calls; O(window) each)."""

    def __init__(
        self, rows: RowsPort, versions: VersionsPort, holder: ModelHolder, settings: Settings
    ) -> None:
        self.rows = rows
        self.versions = versions
        self.holder = holder
        self.settings = settings
        self._references: dict[str, dict[str, Any]] = {}

    def measure(self) -> Measurement:
        """Live accuracy of the champion over its window, and where its error rate rose
        (blocking; O(window))."""
        bundle = self.holder.current
        if bundle is None:
            return Measurement(None, None, 0, False, None)
        s = self.settings
        span = s.eval_window * DETECT_WINDOW_FACTOR
        pairs = self.rows.scored_window_ids(bundle.version, bundle.since_row_id, span)
        if len(pairs) < s.min_samples:
            pairs = self._rescored(bundle, span)
        flags = [c for _, c in pairs]
        recent = flags[-s.eval_window :]
        accuracy = sum(recent) / len(recent) if recent else None
        fired, at, change = False, None, None
        if len(recent) >= min(s.min_samples, DETECT_MIN_ROWS):
            k, z = change_point(flags)
            if k is not None and z >= DETECT_Z:
                fired, at = True, k
            if k is not None and z >= LOCATE_Z:
                change = pairs[k][0]
        row = None if at is None else pairs[at][0]
        return Measurement(bundle.version, accuracy, len(recent), fired, at, change, row)

    def _rescored(self, bundle: ModelBundle, n: int) -> list[tuple[int, bool]]:
        """(row id, correct) for the newest ``n`` labelled rows that arrived after the
        champion went live, each scored by the champion now.

        With late feedback a new champion's own predictions take the label delay to come
        back; the labels arriving meanwhile (of an older version's predictions) are of
        rows it has never seen either, and show at once whether it fits the current
        concept. On rows it served this equals the stored test-then-train flag (the model
        is deterministic). One query of the newest ``n`` rows: O(window)."""
        recent = self.rows.recent_rows(bundle.schema, n)
        raw = recent[int(np.searchsorted(recent.ids, bundle.since_row_id, side="right")) :]
        if not len(raw):
            return []
        predicted = bundle.model.labels_of(bundle.model.predict_rows(raw.x))
        return [(i, p == t) for i, p, t in zip(raw.ids.tolist(), predicted, raw.y, strict=True)]

    def reference(self, version: str) -> dict[str, Any]:
        """The drift reference kept with ``version`` (cached: it never changes)."""
        ref = self._references.get(version)
        if ref is None:
            ref = self.versions.reference(version)
            self._references[version] = ref
        return ref

    def data_drift(self) -> drift.DriftReport | None:
        """Per-feature drift of recent inputs against the champion's training data."""
        bundle = self.holder.current
        if bundle is None:
            return None
        ref = self.reference(bundle.version)
        recent = self.rows.recent_features(bundle.schema, self.settings.eval_window)
        if not len(recent) or not ref:
            return None
        return drift.compare(ref, recent)

    def status_of(self, m: Measurement) -> ServiceStatus:
        """``no_model``; ``collecting`` until the champion has scored ``min_samples``
        rows (nothing is known yet); then ``degraded`` (below threshold) or ``ok``."""
        if m.model_version is None:
            return "no_model"
        if m.accuracy is None or m.samples < self.settings.min_samples:
            return "collecting"
        if m.accuracy < self.settings.performance_threshold:
            return "degraded"
        return "ok"

    def categories(self) -> dict[str, list[str]]:
        """The categories of each categorical feature in the champion's training data,
        most frequent first (at most 50 each: the drift reference keeps those)."""
        bundle = self.holder.current
        if bundle is None:
            return {}
        ref = self.reference(bundle.version)
        out: dict[str, list[str]] = {}
        for name, spec in ref.get("features", {}).items():
            if spec.get("kind") == "categorical":
                props: dict[str, float] = spec.get("props", {})
                out[name] = sorted(props, key=lambda k: (-props[k], k))
        return out
