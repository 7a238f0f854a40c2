"""Data quality counts: every ingested row and every prediction, per feature.

``observe`` is called with the packed matrix that is written anyway (ingest, and the
prediction log's flush, off the request path); it counts whole columns against the
champion's training reference (``core.quality``) and never rejects a row. The check
takes what was counted since the last check (``take``) and alerts when the set of
features with more issues than ``CONTINUAL_QUALITY_ALERT_SHARE`` changes; ``/metrics``
shows the running totals. Counts are per process (each replica counts its own traffic).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from continual.core.quality import QualityRef, count, quality_reference
from continual.core.types import FeatureSchema
from continual.services.alerts import Alerts
from continual.services.holder import ModelHolder


class FeatureQuality(msgspec.Struct, frozen=True):
    """One feature's issues over some rows."""

    feature: str
    out_of_range: int
    unseen: int
    share: float  # of the rows, with either issue


class QualityReport(msgspec.Struct, frozen=True):
    """Issues per feature over the rows seen since the last check."""

    rows: int
    features: list[FeatureQuality]
    flagged: list[str]  # features whose share is above CONTINUAL_QUALITY_ALERT_SHARE
    margin: float
    alert_share: float


class QualityCounter:
    """Counts issues per feature of the champion's schema."""

    def __init__(
        self,
        holder: ModelHolder,
        reference: Callable[[str], dict[str, Any]],
        margin: float,
        alert_share: float,
    ) -> None:
        self.holder = holder
        self.reference = reference
        self.margin = margin
        self.alert_share = alert_share
        self._refs: dict[str, QualityRef] = {}
        self._lock = threading.Lock()
        self._names: tuple[str, ...] = ()
        self.rows = 0
        self.out_of_range = np.zeros(0, dtype=np.int64)
        self.unseen = np.zeros(0, dtype=np.int64)
        self._since = (0, self.out_of_range, self.unseen)
        self.flagged: list[str] = []  # as the last check found them
        self.last: QualityReport | None = None

    def observe(
        self,
        schema: FeatureSchema,
        values: npt.NDArray[np.float64],
        code_of: Sequence[Mapping[str, int]],
    ) -> None:
        """Count the issues of a packed batch (nothing without a champion)."""
        bundle = self.holder.current
        if bundle is None or bundle.schema != schema or not len(values):
            return
        ref = self._refs.get(bundle.version)
        if ref is None:
            ref = quality_reference(self.reference(bundle.version), schema, self.margin)
            self._refs[bundle.version] = ref
        out, unseen = count(ref, values, code_of)
        with self._lock:
            if self._names != schema.names:
                self._names = schema.names
                self.out_of_range = np.zeros(len(out), dtype=np.int64)
                self.unseen = np.zeros(len(out), dtype=np.int64)
                self._since = (self.rows, self.out_of_range.copy(), self.unseen.copy())
            self.rows += len(values)
            self.out_of_range = self.out_of_range + out
            self.unseen = self.unseen + unseen

    def totals(self) -> tuple[int, dict[str, tuple[int, int]]]:
        """(rows counted, feature -> (out of range, unseen)) since start-up."""
        with self._lock:
            return self.rows, {
                n: (int(o), int(u))
                for n, o, u in zip(self._names, self.out_of_range, self.unseen, strict=True)
            }

    def take(self) -> QualityReport:
        """What was counted since the last ``take`` (the check's window)."""
        with self._lock:
            rows0, out0, unseen0 = self._since
            rows = self.rows - rows0
            out = self.out_of_range - (out0 if len(out0) == len(self.out_of_range) else 0)
            unseen = self.unseen - (unseen0 if len(unseen0) == len(self.unseen) else 0)
            self._since = (self.rows, self.out_of_range.copy(), self.unseen.copy())
            names = self._names
        features = [
            FeatureQuality(n, int(o), int(u), round((int(o) + int(u)) / rows, 4) if rows else 0.0)
            for n, o, u in zip(names, out.tolist(), unseen.tolist(), strict=True)
        ]
        flagged = [f.feature for f in features if rows and f.share > self.alert_share]
        return QualityReport(rows, features, flagged, self.margin, self.alert_share)


async def alert_on_change(report: QualityReport, before: list[str], alerts: Alerts) -> None:
    """One ``data_quality`` event (and alert) when the flagged features change."""
    if report.flagged == before or not report.rows:
        return
    by_name = {f.feature: f for f in report.features}
    if report.flagged:
        parts = [
            f"{n} {by_name[n].share:.1%} ({by_name[n].out_of_range} out of range, "
            f"{by_name[n].unseen} unseen)"
            for n in report.flagged
        ]
        message = f"data quality: {', '.join(parts)} of {report.rows} rows"
    else:
        message = f"data quality back to normal on {report.rows} rows"
    await alerts.emit(
        "data_quality",
        message,
        {
            "flagged": report.flagged,
            "before": before,
            "rows": report.rows,
            "features": {f.feature: msgspec.to_builtins(f) for f in report.features},
        },
    )
