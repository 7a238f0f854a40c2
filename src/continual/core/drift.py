"""Data drift statistics: per-feature reference at training, comparison with recent inputs.

Numeric features: PSI on the reference's decile bins and a two-sample KS test.
Categorical features: PSI over categories and a chi-square test. A feature is drifted
when the shift is both material and significant: PSI >= 0.2 (the usual "significant
shift" rule) with the test rejecting at p < 0.05, or the test rejecting at p < 0.001
with a material effect (KS statistic >= 0.1, or PSI >= 0.1). PSI alone is noisy on a
few hundred rows spread over ten bins; the test keeps it from crying wolf.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import msgspec
import numpy as np

from continual.core.frame import Frame, Rows, column_of
from continual.core.tails import chisquare, ks_2samp
from continual.core.types import FeatureSchema

PSI_DRIFT = 0.2
P_VALUE = 0.001
P_SUPPORT = 0.05
SAMPLE = 500
_EPS = 1e-4


class FeatureDrift(msgspec.Struct, frozen=True):
    """Drift of one feature against the champion's training data."""

    feature: str
    kind: str
    psi: float
    statistic: float
    p_value: float
    test: str
    drifted: bool


class DriftReport(msgspec.Struct, frozen=True):
    """Per-feature drift and the share of drifted features."""

    features: list[FeatureDrift]
    drifted_share: float
    recent_rows: int
    reference_rows: int


KNOWN_MAX = 1000  # categories kept per feature for the quality count


def reference(rows: Rows, schema: FeatureSchema, seed: int = 0) -> dict[str, Any]:
    """Summary of the training rows kept with a version, small enough for one DB cell."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"n": len(rows), "features": {}}
    for f in schema.features:
        if f.kind == "numeric":
            values = np.asarray(column_of(rows, f.name), dtype=np.float64)
            edges = np.unique(np.quantile(values, np.linspace(0, 1, 11)[1:-1]))
            counts = np.bincount(
                np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1
            )
            sample = values if len(values) <= SAMPLE else rng.choice(values, SAMPLE, replace=False)
            out["features"][f.name] = {
                "kind": "numeric",
                "edges": edges.tolist(),
                "props": (counts / max(1, len(values))).tolist(),
                "sample": np.round(sample, 6).tolist(),
                # the range data quality counts against (``core.quality``)
                "min": float(values.min()) if len(values) else 0.0,
                "max": float(values.max()) if len(values) else 0.0,
            }
        else:
            cats: dict[str, int] = {}
            for key in map(str, column_of(rows, f.name)):
                cats[key] = cats.get(key, 0) + 1
            total = max(1, len(rows))
            top = dict(sorted(cats.items(), key=lambda kv: -kv[1])[:50])
            out["features"][f.name] = {
                "kind": "categorical",
                "props": {k: v / total for k, v in top.items()},
                "known": sorted(cats)[:KNOWN_MAX],  # unseen categories are counted against it
            }
    return out


def psi(expected: np.ndarray[Any, Any], actual: np.ndarray[Any, Any]) -> float:
    """Population stability index between two proportion vectors."""
    e = np.clip(expected, _EPS, None)
    a = np.clip(actual, _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def compare(ref: Mapping[str, Any], recent: Rows) -> DriftReport:
    """Compare recent inputs with a version's reference."""
    report: list[FeatureDrift] = []
    for name, spec in ref.get("features", {}).items():
        if name not in schema_names(recent):
            continue
        values = column_of(recent, name)
        if not len(values):
            continue
        if spec["kind"] == "numeric":
            x = np.asarray(values, dtype=np.float64)
            edges = np.asarray(spec["edges"], dtype=np.float64)
            counts = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1)
            p = psi(np.asarray(spec["props"]), counts / len(x))
            stat, pv = ks_2samp(np.asarray(spec["sample"], dtype=np.float64), x)
            drifted = (p >= PSI_DRIFT and pv < P_SUPPORT) or (pv < P_VALUE and stat >= 0.1)
            report.append(FeatureDrift(name, "numeric", _r(p), _r(stat), _r(pv), "ks", drifted))
        else:
            props: dict[str, float] = spec["props"]
            keys = [*props.keys(), "__other__"]
            seen: dict[str, int] = dict.fromkeys(keys, 0)
            for v in values:
                k = str(v)
                seen[k if k in props else "__other__"] += 1
            expected = np.asarray([props.get(k, 0.0) for k in keys])
            expected = np.clip(expected, _EPS, None)
            expected = expected / expected.sum()
            observed = np.asarray([seen[k] for k in keys], dtype=np.float64)
            p = psi(expected, observed / len(values))
            stat, pv = chisquare(observed, expected * len(values))
            drifted = (p >= PSI_DRIFT and pv < P_SUPPORT) or (pv < P_VALUE and p >= 0.1)
            report.append(
                FeatureDrift(name, "categorical", _r(p), _r(stat), _r(pv), "chi2", drifted)
            )
    share = sum(f.drifted for f in report) / len(report) if report else 0.0
    return DriftReport(report, round(share, 4), len(recent), int(ref.get("n", 0)))


def schema_names(rows: Rows) -> set[str]:
    """The features ``rows`` hold (a frame: its schema's; dicts: the first row's)."""
    if isinstance(rows, Frame):
        return set(rows.schema.names)
    return set(rows[0]) if len(rows) else set()


def _r(x: float) -> float:
    return round(x, 6) if math.isfinite(x) else 0.0
