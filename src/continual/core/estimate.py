"""Estimated accuracy before the labels come: confidence-based performance estimation.

As NannyML's CBPE does: a model whose confidence is calibrated is right on a row with
probability equal to that confidence, so its expected accuracy on rows without labels
is the mean of their calibrated confidences. The calibration is fitted once per
version, at training time, on the champion's own holdout (rows it was not fitted on):
an isotonic map from the confidence (the top class probability) to the share of rows
that were right (pool-adjacent-violators), each block shrunk towards its own mean
confidence by ``PRIOR_ROWS`` pseudo-rows (a holdout is small), anchored at ``1/K``
(K classes: a model that cannot tell the classes apart is right one time in K).

What it cannot see: a change of concept that leaves the inputs alone. The model stays
as confident as before on inputs that look the same, so the estimate stays where it
was while realized accuracy falls (``docs/benchmarks.md`` shows that case). It follows
covariate shift: inputs moving towards the boundary lower the confidence.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float64]
PRIOR_ROWS = 5.0


class Calibration(msgspec.Struct, frozen=True):
    """Confidence -> probability of being right, as points to interpolate between."""

    x: list[float]
    y: list[float]
    rows: int  # holdout rows it was fitted on


def fit_calibration(confidence: Vector, correct: npt.ArrayLike, classes: int) -> Calibration:
    """Fit the isotonic map on holdout confidences and whether each row was right."""
    conf = np.asarray(confidence, dtype=np.float64)
    hits = np.asarray(correct, dtype=np.float64)
    floor = 1.0 / max(2, classes)
    if not len(conf):
        return Calibration([floor, 1.0], [floor, 1.0], 0)
    order = np.argsort(conf, kind="stable")
    sums: list[float] = []  # per block: sum of hits, sum of confidences, rows
    confs: list[float] = []
    counts: list[float] = []
    for c, h in zip(conf[order].tolist(), hits[order].tolist(), strict=True):
        sums.append(h)
        confs.append(c)
        counts.append(1.0)
        while len(sums) > 1 and sums[-2] / counts[-2] >= sums[-1] / counts[-1]:
            s, cs, k = sums.pop(), confs.pop(), counts.pop()
            sums[-1] += s
            confs[-1] += cs
            counts[-1] += k
    rows = np.asarray(counts)
    mean_conf = np.asarray(confs) / rows
    y = (np.asarray(sums) + PRIOR_ROWS * mean_conf) / (rows + PRIOR_ROWS)
    y = np.maximum.accumulate(np.clip(y, 0.0, 1.0))
    xs = [floor, *mean_conf.tolist()]
    ys = [min(floor, float(y[0])), *y.tolist()]
    return Calibration([round(v, 6) for v in xs], [round(v, 6) for v in ys], len(conf))


def calibrated(cal: Calibration, confidence: Vector) -> Vector:
    """The probability of being right of each confidence (clamped at the ends)."""
    return np.interp(np.asarray(confidence, dtype=np.float64), cal.x, cal.y)


def estimate_accuracy(cal: Calibration, confidence: Vector) -> float | None:
    """Expected accuracy on rows with these confidences; ``None`` for no rows."""
    if not len(confidence):
        return None
    return float(calibrated(cal, confidence).mean())


def calibration_of(raw: Any) -> Calibration | None:
    """The calibration kept with a version (its reference's ``calibration``), if any."""
    if not isinstance(raw, dict):
        return None
    try:
        return msgspec.convert(raw, Calibration)
    except msgspec.ValidationError:
        return None
