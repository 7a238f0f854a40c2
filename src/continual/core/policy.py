"""The loop's decisions as pure functions: is a retrain due, and does a challenger win?"""

from __future__ import annotations

import msgspec

from continual.core.types import Decision


class CheckInputs(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the check decides on, gathered by the monitor."""

    now: float
    has_champion: bool
    labelled_rows: int
    samples: int
    accuracy: float | None
    threshold: float
    min_samples: int
    detector_fired: bool
    last_retrain_at: float | None
    cooldown_seconds: float


class Verdict(msgspec.Struct, frozen=True):
    """A decision and the reason a person would want to read."""

    decision: Decision
    reason: str


def decide(c: CheckInputs) -> Verdict:
    """Decide ``ok``, ``insufficient_data``, ``cooldown`` or ``retrain``.

    The threshold is always the backstop; the drift detector can only bring a retrain
    forward, never hold one back. Cooldown only delays a retrain that is due.
    """
    if not c.has_champion:
        if c.labelled_rows < c.min_samples:
            return Verdict(
                "insufficient_data",
                f"no model yet and {c.labelled_rows} labelled rows < {c.min_samples} needed",
            )
        want = f"no model yet and {c.labelled_rows} labelled rows are available"
    elif c.samples < c.min_samples or c.accuracy is None:
        return Verdict(
            "insufficient_data",
            f"{c.samples} rows scored by the champion < {c.min_samples} needed",
        )
    elif c.accuracy < c.threshold:
        want = f"live accuracy {c.accuracy:.3f} < threshold {c.threshold:.3f} on {c.samples} rows"
    elif c.detector_fired:
        want = f"the drift detector fired on the error stream (accuracy {c.accuracy:.3f})"
    else:
        return Verdict(
            "ok",
            f"live accuracy {c.accuracy:.3f} >= threshold {c.threshold:.3f} on {c.samples} rows",
        )
    if c.last_retrain_at is not None and c.now - c.last_retrain_at < c.cooldown_seconds:
        left = c.cooldown_seconds - (c.now - c.last_retrain_at)
        return Verdict("cooldown", f"{want}, but the last retrain was {left:.0f} s too recent")
    return Verdict("retrain", want)


def should_promote(
    challenger: float, champion: float | None, min_improvement: float
) -> tuple[bool, str]:
    """Promote only a challenger that beats the champion by at least ``min_improvement``
    on the same held-out rows (or when there is no champion)."""
    if champion is None:
        return True, f"no champion; challenger scores {challenger:.3f} on the holdout"
    gain = challenger - champion
    if gain > 0 and gain >= min_improvement:
        return True, (
            f"challenger {challenger:.3f} beats champion {champion:.3f} by {gain:.3f} "
            f"(>= {min_improvement:.3f})"
        )
    return False, (
        f"challenger {challenger:.3f} does not beat champion {champion:.3f} "
        f"by at least {min_improvement:.3f}"
    )
