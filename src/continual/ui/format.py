"""How the dashboard writes times and numbers: UTC everywhere, short and plain.

Times are shown in UTC (the chart too, ``useUTC``), so that a table, a card and the chart
never disagree about what time it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime


def parse_iso(value: str | None) -> float | None:
    """Epoch seconds of an ISO 8601 string (``None`` stays ``None``)."""
    return None if value is None else datetime.fromisoformat(value).timestamp()


def utc(ts: float | None) -> str:
    """``2026-11-26 08:43:44 UTC``, or an em dash for no time."""
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def clock_time(ts: float) -> str:
    """``08:43:44`` (UTC), for tooltips."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%H:%M:%S")


def _span(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def ago(ts: float | None, now: float) -> str:
    """``12 s ago``, ``3 min ago``; ``never`` for no time."""
    if ts is None:
        return "never"
    return "just now" if now - ts < 1 else f"{_span(now - ts)} ago"


def until(ts: float | None, now: float) -> str:
    """``in 18 s``, ``any moment`` once passed; ``—`` for no time."""
    if ts is None:
        return "—"
    return "any moment" if ts - now < 1 else f"in {_span(ts - now)}"


def percent(value: float | None, digits: int = 1) -> str:
    """``91.2 %``; an em dash for no value."""
    return "—" if value is None else f"{value * 100:.{digits}f} %"


def number(value: object) -> str:
    """A short form of a value from an event's data (floats to four places)."""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 and value != 0 else f"{round(value, 4)}"
    return "—" if value is None else str(value)


def numbers(data: Mapping[str, object]) -> str:
    """An event's numbers as ``key value · key value``.

    Free text (reasons, triggers) and long identifiers are left out: the message
    already says them, and the numbers are what a reader compares.
    """
    shown = {
        k: v for k, v in data.items() if not isinstance(v, str) or (len(v) <= 24 and " " not in v)
    }
    return " · ".join(f"{k.replace('_', ' ')} {number(v)}" for k, v in shown.items())
