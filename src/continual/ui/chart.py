"""The overview's chart: live accuracy per check, the threshold, and the loop's markers.

Pure ECharts options built from check records and events; the page only hands them to
``ui.echart``. Tooltips are rendered by ECharts as HTML, so every text in them is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from continual.core.types import CheckRecord, Event
from continual.ui.format import clock_time, percent
from continual.ui.view import Overview

# the events the chart marks, with the series that shows them and where on the y axis
MARKERS: dict[str, tuple[str, float, str, str]] = {
    "retrain_started": ("retrain", 0.0, "triangle", "#6366f1"),
    "promoted": ("promotion", 1.0, "diamond", "#16a34a"),
    "rollback": ("rollback", 1.0, "pin", "#ea580c"),
}
ACCURACY_SERIES = "live accuracy"
ESTIMATE_SERIES = "estimated accuracy"


def _accuracy_points(checks: Iterable[CheckRecord]) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = []
    for c in checks:
        if c.accuracy is None:
            continue  # no champion or no rows scored yet: nothing to plot
        version = f"v{c.model_version} · " if c.model_version else ""
        tip = (
            f"{clock_time(c.at)} UTC<br>{version}live accuracy {percent(c.accuracy)} "
            f"on {c.samples} rows<br>check: {c.decision.replace('_', ' ')}"
        )
        points.append({"value": [round(c.at * 1000), round(c.accuracy, 4)], "tip": tip})
    return points


def _estimate_points(checks: Iterable[CheckRecord]) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = []
    for c in checks:
        if c.estimated_accuracy is None:
            continue
        version = f"v{c.model_version} · " if c.model_version else ""
        tip = (
            f"{clock_time(c.at)} UTC<br>{version}estimated accuracy "
            f"{percent(c.estimated_accuracy)} on {c.estimated_samples} recent predictions "
            f"(calibrated confidence, no labels)<br>realized: "
            + (
                f"{percent(c.accuracy)} on {c.samples} rows"
                if c.accuracy is not None
                else "none yet"
            )
        )
        points.append({"value": [round(c.at * 1000), round(c.estimated_accuracy, 4)], "tip": tip})
    return points


def chart_series(
    checks: Sequence[CheckRecord], markers: Sequence[Event], threshold: float
) -> list[dict[str, Any]]:
    """The chart's series: live accuracy with the threshold line, the estimated accuracy
    (when a check had one), then one per marker kind."""
    first = checks[0].at if checks else None
    series: list[dict[str, Any]] = [
        {
            "name": ACCURACY_SERIES,
            "type": "line",
            "showSymbol": True,
            "symbolSize": 6,
            "color": "#2563eb",
            "data": _accuracy_points(checks),
            "markLine": {
                "silent": True,
                "symbol": "none",
                "lineStyle": {"type": "dashed", "color": "#dc2626"},
                "label": {
                    "formatter": f"threshold {percent(threshold, 0)}",
                    "position": "insideStartTop",
                },
                "data": [{"yAxis": threshold}],
            },
        }
    ]
    estimated = _estimate_points(checks)
    if estimated:
        series.append(
            {
                "name": ESTIMATE_SERIES,
                "type": "line",
                "showSymbol": True,
                "symbolSize": 4,
                "color": "#9333ea",
                "lineStyle": {"type": "dotted"},
                "data": estimated,
            }
        )
    for kind, (name, y, symbol, color) in MARKERS.items():
        shown = [e for e in markers if e.kind == kind and (first is None or e.at >= first - 60)]
        series.append(
            {
                "name": name,
                "type": "scatter",
                "symbol": symbol,
                "symbolSize": 12,
                "color": color,
                "data": [
                    {
                        "value": [round(e.at * 1000), y],
                        "tip": f"{clock_time(e.at)} UTC<br>{_html(e.message)}",
                    }
                    for e in sorted(shown, key=lambda e: e.at)
                ],
            }
        )
    return series


def chart_options(overview: Overview) -> dict[str, Any]:
    """Complete ECharts options for the accuracy-over-time chart."""
    return {
        "useUTC": True,
        "animation": False,
        "grid": {"left": 44, "right": 16, "top": 36, "bottom": 28},
        "legend": {"top": 0, "type": "scroll", "itemWidth": 14, "itemHeight": 10},
        "tooltip": {"trigger": "item", ":formatter": "p => (p.data && p.data.tip) || ''"},
        "xAxis": {"type": "time", "splitLine": {"show": False}, "axisLabel": {"hideOverlap": True}},
        "yAxis": {
            "type": "value",
            "min": 0,
            "max": 1,
            "axisLabel": {":formatter": "v => Math.round(v * 100) + '%'"},
        },
        "series": chart_series(overview.checks, overview.markers, overview.status.threshold),
    }


def _html(text: str) -> str:
    # tooltips are rendered as HTML by ECharts: event messages must not become markup
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
