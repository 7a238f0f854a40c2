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
    # a champion fitted on rows since a located change (None otherwise): how many rows
    fit_rows: int | None = None
    rows_since_change: int = 0
    last_refresh_rows: int = 0  # rows since the change when the last refresh was asked for
    refresh_until: int = 0


class Verdict(msgspec.Struct, frozen=True):
    """A decision and the reason a person would want to read."""

    decision: Decision
    reason: str
    refresh: bool = False  # the retrain is due to grow a young champion's window


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


def decide(c: CheckInputs) -> Verdict:
    """Decide ``ok``, ``insufficient_data``, ``cooldown`` or ``retrain``.

    The threshold is always the backstop; the drift detector can only bring a retrain
    forward, never hold one back. A young champion (fitted on the rows since a change)
    is refitted as they grow, even before it has scored ``min_samples`` rows. Cooldown
    only delays a retrain that is due.
    """
    refresh = False
    measured = c.samples >= c.min_samples and c.accuracy is not None
    if not c.has_champion:
        if c.labelled_rows < c.min_samples:
            return Verdict(
                "insufficient_data",
                f"no model yet and {c.labelled_rows} labelled rows < {c.min_samples} needed",
            )
        want = f"no model yet and {c.labelled_rows} labelled rows are available"
    elif measured and c.accuracy is not None and c.accuracy < c.threshold:
        want = f"live accuracy {c.accuracy:.3f} < threshold {c.threshold:.3f} on {c.samples} rows"
    elif c.detector_fired:  # the monitor runs it only on enough rows
        want = f"the drift detector fired on the error stream (accuracy {c.accuracy:.3f})"
    elif refresh_due(c):
        refresh = True
        want = (
            f"the champion was fitted on {c.fit_rows} rows of the current concept; "
            f"{c.rows_since_change} have arrived since the change"
        )
    elif not measured or c.accuracy is None:
        return Verdict(
            "insufficient_data",
            f"{c.samples} rows scored by the champion < {c.min_samples} needed",
        )
    else:
        return Verdict(
            "ok",
            f"live accuracy {c.accuracy:.3f} >= threshold {c.threshold:.3f} on {c.samples} rows",
        )
    if c.last_retrain_at is not None and c.now - c.last_retrain_at < c.cooldown_seconds:
        left = c.cooldown_seconds - (c.now - c.last_retrain_at)
        return Verdict("cooldown", f"{want}, but the last retrain was {left:.0f} s too recent")
    return Verdict("retrain", want, refresh)


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
