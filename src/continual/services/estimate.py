"""The champion's estimated accuracy on its recent predictions, before their labels come.

Reads the newest ``CONTINUAL_EVAL_WINDOW`` predictions the champion made (one indexed
query), scores them again with the champion (O(window), off the request path: the
check, ``/model-status`` and ``/metrics`` call it) and averages their calibrated
confidence (``core.estimate``) with the calibration kept with the version.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import msgspec

from continual.core.errors import ContinualError
from continual.core.estimate import calibration_of, estimate_accuracy
from continual.core.ports import PredictionsPort
from continual.services.holder import ModelHolder


class Estimate(msgspec.Struct, frozen=True):
    """Estimated accuracy and the rows it rests on."""

    accuracy: float | None
    samples: int  # recent predictions it is taken over
    calibration_rows: int  # holdout rows the calibration was fitted on (0: none kept)


class Estimator:
    """Estimates the champion's accuracy (blocking; O(window))."""

    def __init__(
        self,
        predictions: PredictionsPort,
        holder: ModelHolder,
        reference: Callable[[str], dict[str, Any]],
        window: int,
        flush: Callable[[], int] | None = None,
    ) -> None:
        self.predictions = predictions
        self.holder = holder
        self.reference = reference
        self.window = window
        self.flush = flush  # the prediction log's: the newest predictions count too

    def estimate(self) -> Estimate | None:
        """``None`` without a champion; ``accuracy`` ``None`` without a calibration
        (a version trained before there was one) or predictions."""
        bundle = self.holder.current
        if bundle is None:
            return None
        cal = calibration_of(self.reference(bundle.version).get("calibration"))
        if cal is None:
            return Estimate(None, 0, 0)
        if self.flush is not None:
            with contextlib.suppress(ContinualError):  # the read below reports a failure
                self.flush()
        recent = self.predictions.recent_features_of(bundle.schema, bundle.version, self.window)
        if not len(recent):
            return Estimate(None, 0, cal.rows)
        confidence = bundle.model.predict_rows(recent).max(axis=1)
        accuracy = estimate_accuracy(cal, confidence)
        return Estimate(None if accuracy is None else round(accuracy, 4), len(recent), cal.rows)
