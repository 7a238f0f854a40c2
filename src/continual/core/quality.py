"""Data quality at the door: values outside the training range, unseen categories.

Per feature, against the champion's training reference (``drift.reference`` keeps each
numeric feature's ``min``/``max`` and each categorical feature's ``known`` values): a
value counts as out of range when it lies beyond the range by more than ``margin``
times its width, a category as unseen when training never saw it. Counting never
rejects a row: a valid row is served and stored whatever it holds. Whole columns at a
time, on the packed float64 matrix (categories as codes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from continual.core.types import FeatureSchema

Counts = npt.NDArray[np.int64]


class QualityRef:
    """Per feature of a schema: the accepted range (numeric) or known values (categorical)."""

    __slots__ = ("hi", "known", "lo")

    def __init__(
        self, lo: npt.NDArray[np.float64], hi: npt.NDArray[np.float64], known: list[set[str] | None]
    ) -> None:
        self.lo = lo
        self.hi = hi
        self.known = known


def quality_reference(ref: Mapping[str, Any], schema: FeatureSchema, margin: float) -> QualityRef:
    """The bounds of each feature from a version's drift reference (a feature the
    reference has no bounds for, e.g. of an older version, is never counted)."""
    k = len(schema.features)
    lo = np.full(k, -np.inf)
    hi = np.full(k, np.inf)
    known: list[set[str] | None] = [None] * k
    specs = ref.get("features", {})
    for j, f in enumerate(schema.features):
        spec = specs.get(f.name, {})
        if f.kind == "numeric" and "min" in spec and "max" in spec:
            low, high = float(spec["min"]), float(spec["max"])
            slack = margin * (high - low) + 1e-9 * max(1.0, abs(low), abs(high))
            lo[j], hi[j] = low - slack, high + slack
        elif f.kind == "categorical" and "known" in spec:
            known[j] = set(map(str, spec["known"]))
    return QualityRef(lo, hi, known)


def count(
    qref: QualityRef, values: npt.NDArray[np.float64], code_of: Sequence[Mapping[str, int]]
) -> tuple[Counts, Counts]:
    """(out of range, unseen) per feature for a packed matrix; ``code_of[j]`` maps feature
    j's values to the codes stored in the matrix."""
    k = values.shape[1] if values.ndim == 2 else len(qref.known)
    out = np.count_nonzero((values < qref.lo) | (values > qref.hi), axis=0).astype(np.int64)
    unseen = np.zeros(k, dtype=np.int64)
    for j, known in enumerate(qref.known):
        if known is None:
            continue
        out[j] = 0  # codes are not magnitudes
        codes = code_of[j] if j < len(code_of) else {}
        allowed = np.asarray([codes[v] for v in known if v in codes], dtype=np.float64)
        unseen[j] = int(np.count_nonzero(~np.isin(values[:, j], allowed)))
    return out, unseen
