"""The estimate's part of the adaptation report: how far the accuracy estimated without
labels (``estimated_accuracy`` of each ``POST /check``) was from the accuracy the same
rows realized once their labels came (those that ever came)."""

from __future__ import annotations

from collections.abc import Sequence

from _harness import fmt, table
from _loop import Outcome
from _streams import Stream


def _mae(pairs: Sequence[tuple[float, float]]) -> float:
    return sum(abs(e - r) for e, r in pairs) / len(pairs) if pairs else float("nan")


def estimates(outcomes: Sequence[Outcome], streams: dict[tuple[str, int], Stream]) -> str:
    """One row per stream and label variant (seeds pooled): the mean absolute error of
    the estimate over every check, before the first drift and after it."""
    rows = []
    keys = sorted({(o.stream, o.variant) for o in outcomes if o.checks})
    for name, variant in keys:
        every, before, after = [], [], []
        for o in outcomes:
            if (o.stream, o.variant) != (name, variant) or not o.checks:
                continue
            drifts = streams[(o.stream, o.seed)].drifts
            first = drifts[0] if drifts else None
            for c in o.checks:
                if c.estimated is None or c.realized is None:
                    continue
                pair = (c.estimated, c.realized)
                every.append(pair)
                (before if first is None or c.row <= first else after).append(pair)
        if not every:
            continue
        rows.append(
            [
                name,
                variant,
                str(len(every)),
                fmt(_mae(every)),
                fmt(_mae(before)),
                fmt(_mae(after)),
                fmt(sum(e for e, _ in every) / len(every)),
                fmt(sum(r for _, r in every) / len(every)),
            ]
        )
    if not rows:
        return "No check carried an estimate (no calibrated champion)."
    return table(
        [
            "stream",
            "labels",
            "checks",
            "MAE",
            "MAE before the first drift",
            "MAE after it",
            "mean estimate",
            "mean realized",
        ],
        rows,
    )
