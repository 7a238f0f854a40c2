"""The loop's decisions as pure functions: is a retrain due, and does a challenger win?"""

from __future__ import annotations

import math
from typing import Literal

import msgspec

from continual.core.types import Capacity, Decision

# what made a retrain due; the monitor declares capacity when one finds nothing better
Trigger = Literal[
    "", "first", "threshold", "estimate", "detector", "refresh", "fall", "drift", "backoff"
]


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
    # a champion fitted on rows since a located change (None otherwise): how many rows
    fit_rows: int | None = None
    rows_since_change: int = 0
    last_refresh_rows: int = 0  # rows since the change when the last refresh was asked for
    refresh_until: int = 0
    # the champion could not be beaten on recent data (None otherwise), and what has
    # changed since: a change point located after it, features newly drifting, rows
    capacity: Capacity | None = None
    change_after_capacity: bool = False
    new_drift: tuple[str, ...] = ()
    rows_since_capacity: int = 0
    # the accuracy estimated from calibrated confidence on recent predictions (no labels),
    # acted on only when asked (CONTINUAL_ACT_ON_ESTIMATE) and realized accuracy lacks rows
    estimated_accuracy: float | None = None
    estimated_samples: int = 0
    act_on_estimate: bool = False


class Verdict(msgspec.Struct, frozen=True):
    """A decision and the reason a person would want to read."""

    decision: Decision
    reason: str
    refresh: bool = False  # the retrain is due to grow a young champion's window
    trigger: Trigger = ""


def fall_margin(level: float, level_samples: int, samples: int) -> float:
    """How far below its capacity level live accuracy must fall to count as a change:
    two standard errors of the difference of two accuracies, the level's measured on
    ``level_samples`` rows and today's on ``samples`` (at least 0.01). Both are noisy:
    a level taken on the first 200 rows is itself a few points off."""
    p = min(max(level, 0.0), 1.0)
    spread = 1.0 / max(1, level_samples) + 1.0 / max(1, samples)
    return max(0.01, 2.0 * math.sqrt(p * (1.0 - p) * spread))


def refresh_due(c: CheckInputs) -> bool:
    """Whether a champion fitted on the few rows since a change should be refitted.

    After a drift the first challenger learns from the few rows of the new concept that
    exist then (tens to hundreds); it is accurate enough that neither the threshold nor
    the detector fires again, so without this it would serve for good. Each time the
    rows since the change double (relative to the fit, or to the last refresh asked
    for), one retrain lets the window search use them, until the fit reaches
    ``refresh_until`` rows. On a stream without a detected change it never fires, and
    after one it fires at most log2(refresh_until / first fit) times, all within a few
    thousand rows of the change."""
    if c.fit_rows is None or c.fit_rows >= c.refresh_until:
        return False
    return c.rows_since_change >= 2 * max(c.fit_rows, c.last_refresh_rows, 1)


def decide(c: CheckInputs) -> Verdict:  # noqa: PLR0911 - one return per rule of the policy
    """Decide ``ok``, ``insufficient_data``, ``cooldown`` or ``retrain``.

    The threshold is the backstop, and the drift detector can bring a retrain forward.
    A young champion (fitted on fewer rows than it could be) is refitted as rows grow,
    even before it has scored ``min_samples`` rows. At capacity (the last retrain found
    nothing better) neither the threshold nor a change already tried starts a retrain:
    a new change does (a change point after it, a feature newly drifting, a fall below
    the level the champion reached), or a doubling back-off. Cooldown only delays a
    retrain that is due.
    """
    measured = c.samples >= c.min_samples and c.accuracy is not None
    if not c.has_champion:
        if c.labelled_rows < c.min_samples:
            return Verdict(
                "insufficient_data",
                f"no model yet and {c.labelled_rows} labelled rows < {c.min_samples} needed",
            )
        return _due(c, f"no model yet and {c.labelled_rows} labelled rows are available", "first")
    cap = c.capacity
    if cap is not None and measured and c.accuracy is not None:
        return _at_capacity(c, cap, c.accuracy)
    if measured and c.accuracy is not None and c.accuracy < c.threshold:
        return _due(
            c,
            f"live accuracy {c.accuracy:.3f} < threshold {c.threshold:.3f} on {c.samples} rows",
            "threshold",
        )
    if (
        not measured
        and c.act_on_estimate
        and c.estimated_accuracy is not None
        and c.estimated_samples >= c.min_samples
        and c.estimated_accuracy < c.threshold
    ):
        return _due(
            c,
            f"estimated accuracy {c.estimated_accuracy:.3f} < threshold {c.threshold:.3f} on "
            f"{c.estimated_samples} predictions without labels ({c.samples} labelled rows "
            f"< {c.min_samples} for realized accuracy)",
            "estimate",
        )
    if c.detector_fired:  # the monitor runs it only on enough rows
        return _due(
            c,
            f"the drift detector fired on the error stream (accuracy {c.accuracy:.3f})",
            "detector",
        )
    if refresh_due(c):
        return _refresh(c)
    if not measured or c.accuracy is None:
        return Verdict(
            "insufficient_data",
            f"{c.samples} rows scored by the champion < {c.min_samples} needed",
        )
    return Verdict(
        "ok",
        f"live accuracy {c.accuracy:.3f} >= threshold {c.threshold:.3f} on {c.samples} rows",
    )


def _at_capacity(c: CheckInputs, cap: Capacity, accuracy: float) -> Verdict:
    floor = cap.level - fall_margin(cap.level, cap.samples, c.samples)
    if accuracy < floor:
        return _due(
            c,
            f"live accuracy {accuracy:.3f} fell below {floor:.3f}, under the level "
            f"{cap.level:.3f} the champion reached at capacity",
            "fall",
        )
    if c.detector_fired and c.change_after_capacity:
        return _due(
            c,
            f"the error stream changed after the champion reached capacity "
            f"(accuracy {accuracy:.3f})",
            "detector",
        )
    if c.new_drift:
        return _due(
            c,
            f"{', '.join(c.new_drift)} drifted since the champion reached capacity",
            "drift",
        )
    if refresh_due(c):
        return _refresh(c)
    if c.now >= cap.retry_at and c.rows_since_capacity >= c.min_samples:
        return _due(
            c,
            f"at capacity for {c.now - cap.declared_at:.0f} s: trying again after "
            f"{cap.backoff_seconds:.0f} s with {c.rows_since_capacity} new rows",
            "backoff",
        )
    below = "below" if accuracy < c.threshold else "at or above"
    return Verdict(
        "ok",
        f"at capacity: live accuracy {accuracy:.3f} is {below} threshold {c.threshold:.3f}, "
        f"and retraining found nothing better (best of {len(cap.families)} "
        f"{'family' if len(cap.families) == 1 else 'families'} {cap.best:.3f}); "
        f"waiting for a change in the data",
    )


def _refresh(c: CheckInputs) -> Verdict:
    return _due(
        c,
        f"the champion was fitted on {c.fit_rows} rows of the current concept; "
        f"{c.rows_since_change} have arrived since it began",
        "refresh",
        refresh=True,
    )


def _due(c: CheckInputs, want: str, trigger: Trigger, refresh: bool = False) -> Verdict:
    if c.last_retrain_at is not None and c.now - c.last_retrain_at < c.cooldown_seconds:
        left = c.cooldown_seconds - (c.now - c.last_retrain_at)
        return Verdict(
            "cooldown", f"{want}, but the last retrain was {left:.0f} s too recent", False, trigger
        )
    return Verdict("retrain", want, refresh, trigger)


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
