"""What the adaptation tables show, computed from per-row correctness and the checks.

- prequential accuracy: every row predicted before its label was learnt, over the stream
  and per segment;
- rows to recover: after a drift is complete (at once for an abrupt one, at the end of
  the moving segment for a gradual one), rows until the trailing 500-row accuracy is
  within 2 points of the new concept's oracle, checked every 50 rows (so 500 is the
  least it can show); ``None`` when not within the segment;
- retrains: ``POST /check`` decisions ``retrain``, promoted or not, after the first model;
  one "without a drift near" has no drift starting in the 2,000 rows before it (on a
  stationary stream every retrain is one); "per drift" counts the retrains from a
  drift's start until the next drift starts or 2,000 rows after it is complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from _streams import Drift, Segment, Stream

RECOVERY_WINDOW = 500
RECOVERY_STEP = 50
RECOVERY_MARGIN = 0.02
NEAR_ROWS = 2000
GOAL_RECOVERY_ROWS = 1000
GOAL_PER_DRIFT = 2


@dataclass
class CheckAt:
    """One ``POST /check`` the harness made, after ``row`` rows (and its retrain's verdict)."""

    row: int
    decision: str
    promoted: bool | None
    reason: str
    version: str | None = None
    model_type: str | None = None
    # the check's estimated accuracy, on how many of the champion's newest predictions,
    # and the accuracy those very rows realized (their labels, those that ever come)
    estimated: float | None = None
    estimated_rows: int = 0
    realized: float | None = None


@dataclass
class Metrics:
    """One learner on one stream, seed and label variant."""

    stream: str
    seed: int
    variant: str
    learner: str
    accuracy: float
    segments: list[float]
    recovery: list[int | None]
    retrains: int | None = None
    promotions: int | None = None
    unexplained: int | None = None
    per_drift: list[int] = field(default_factory=list)
    families: list[str] = field(default_factory=list)
    seconds: float | None = None


def recovery_rows(correct: Sequence[bool], start: int, end: int, oracle: float) -> int | None:
    """Rows after ``start`` until the trailing 500-row accuracy is within 2 points of
    ``oracle`` (checked every 50 rows); ``None`` if not before ``end``."""
    for t in range(start + RECOVERY_WINDOW, end + 1, RECOVERY_STEP):
        window = correct[t - RECOVERY_WINDOW : t]
        if sum(window) / len(window) >= oracle - RECOVERY_MARGIN:
            return t - start
    return None


def without_drift_near(retrain_rows: Sequence[int], drifts: Sequence[Drift]) -> int:
    """Retrains with no drift started in the ``NEAR_ROWS`` rows before them (or under way)."""
    return sum(
        1
        for at in retrain_rows
        if not any(d.start <= at <= max(d.start, d.end) + NEAR_ROWS for d in drifts)
    )


def per_drift(retrain_rows: Sequence[int], drifts: Sequence[Drift]) -> list[int]:
    """For each drift, the retrains from its start until the next one starts or
    ``NEAR_ROWS`` after it is complete, whichever is first."""
    out = []
    for k, d in enumerate(drifts):
        stop = d.end + NEAR_ROWS
        if k + 1 < len(drifts):
            stop = min(stop, drifts[k + 1].start - 1)
        out.append(sum(1 for at in retrain_rows if d.start <= at <= stop))
    return out


def segment_accuracy(correct: Sequence[bool], seg: Segment) -> float:
    """Accuracy over one segment's rows."""
    return sum(correct[seg.start : seg.end]) / (seg.end - seg.start)


def measure(
    stream: Stream,
    variant: str,
    learner: str,
    correct: Sequence[bool],
    checks: Sequence[CheckAt] | None = None,
) -> Metrics:
    """Every figure the tables show, for one learner's correctness on one replay."""
    changes = stream.changes
    m = Metrics(
        stream=stream.name,
        seed=stream.seed,
        variant=variant,
        learner=learner,
        accuracy=sum(correct) / len(correct),
        segments=[segment_accuracy(correct, s) for s in stream.segments],
        recovery=[recovery_rows(correct, d.end, d.target.end, d.target.oracle) for d in changes],
    )
    if checks is not None:
        retrains = [c.row for c in checks if c.decision == "retrain"]
        m.retrains = len(retrains)
        m.promotions = sum(1 for c in checks if c.promoted)
        m.unexplained = without_drift_near(retrains, changes)
        m.per_drift = per_drift(retrains, changes)
    return m


def selfcheck() -> None:
    """The helpers above on hand-made cases (run by ``--smoke``)."""
    seg = Segment(1000, 2000, "b", 0.9)
    abrupt = Drift(1000, 1000, seg)
    gradual = Drift(1000, 2000, Segment(2000, 3000, "c", 0.9))
    bad, good = [False] * 1000, [True] * 1000
    assert recovery_rows(bad + [False] * 300 + good[:700], 1000, 2000, 0.9) == 750
    assert recovery_rows(bad + bad, 1000, 2000, 0.9) is None
    assert recovery_rows(bad + good, 1000, 2000, 1.0) == 500  # the least it can show
    assert without_drift_near([500, 1000, 3000, 3001], [abrupt]) == 2
    assert without_drift_near([900], []) == 1
    assert without_drift_near([1500, 3999, 4001], [gradual]) == 1
    second = Drift(2500, 2500, Segment(2500, 3500, "d", 0.9))
    assert per_drift([1100, 1200, 2499, 2500, 2600], [abrupt, second]) == [3, 2]
    assert per_drift([1100, 3000, 3001], [abrupt]) == [2]
