"""A challenger on live traffic, judged against the champion: pure verdicts.

Shadow: both versions predicted the very same rows, so the comparison is paired: on the
rows where they disagree, the shadow must be right more often than the champion by the
margin (``CONTINUAL_MIN_IMPROVEMENT``, as a share of all rows) and by more than two
standard errors of a sign test, so that a lucky streak on a few rows promotes nothing.
Canary: the two answered different callers, so the comparison is of two accuracies, each
on its own rows; the canary is ended when it is behind by the margin and by more than
two standard errors of the difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import msgspec

Action = Literal["wait", "promote", "end"]
Z = 2.0


class Evidence(msgspec.Struct, frozen=True, kw_only=True):
    """What a trial's verdict rests on."""

    rows: int
    accuracy: float | None  # the challenger's live accuracy
    champion_accuracy: float | None
    champion_rows: int = 0
    gain: float | None = None
    z: float | None = None


def shadow_verdict(
    pairs: Sequence[tuple[bool, bool]], min_rows: int, margin: float
) -> tuple[Action, Evidence]:
    """(shadow right, champion right) on the same labelled rows -> promote, end or wait."""
    n = len(pairs)
    if not n:
        return "wait", Evidence(rows=0, accuracy=None, champion_accuracy=None)
    mine = sum(s for s, _ in pairs)
    theirs = sum(c for _, c in pairs)
    wins = sum(s and not c for s, c in pairs)
    losses = sum(c and not s for s, c in pairs)
    z = (wins - losses) / math.sqrt(wins + losses) if wins + losses else 0.0
    gain = (mine - theirs) / n
    ev = Evidence(
        rows=n,
        accuracy=mine / n,
        champion_accuracy=theirs / n,
        champion_rows=n,
        gain=round(gain, 4),
        z=round(z, 3),
    )
    if n < min_rows:
        return "wait", ev
    if gain >= margin and gain > 0 and z > Z:
        return "promote", ev
    if -gain >= margin and -gain > 0 and -z > Z:
        return "end", ev
    return "wait", ev


def canary_verdict(
    canary: Sequence[bool], champion: Sequence[bool], min_rows: int, margin: float
) -> tuple[Action, Evidence]:
    """The canary's and the champion's right/wrong on their own rows -> end or wait."""
    n, m = len(canary), len(champion)
    if not n or not m:
        return "wait", Evidence(
            rows=n,
            accuracy=sum(canary) / n if n else None,
            champion_accuracy=sum(champion) / m if m else None,
            champion_rows=m,
        )
    p, q = sum(canary) / n, sum(champion) / m
    se = math.sqrt(max(p * (1 - p) / n + q * (1 - q) / m, 1e-12))
    gain = p - q
    ev = Evidence(
        rows=n,
        accuracy=p,
        champion_accuracy=q,
        champion_rows=m,
        gain=round(gain, 4),
        z=round(gain / se, 3),
    )
    if n < min_rows or m < min_rows:
        return "wait", ev
    if -gain >= margin and -gain > 0 and -gain / se > Z:
        return "end", ev
    return "wait", ev
