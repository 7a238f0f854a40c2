"""View models: what the pages show, computed from service results by pure functions.

No NiceGUI here, so every number and label the dashboard shows is tested without a
browser. Times are shown in UTC (the chart too, ``useUTC``), so a table, a card and the
chart never disagree about what time it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from continual.adapters.db.store import CheckRecord
from continual.core.drift import DriftReport
from continual.core.types import Event, FeatureSchema, ModelRecord
from continual.services.monitor import ModelStatusView

# the events the chart marks, with the series that shows them and where on the y axis
MARKERS: dict[str, tuple[str, float, str, str]] = {
    "retrain_started": ("retrain", 0.0, "triangle", "#6366f1"),
    "promoted": ("promotion", 1.0, "diamond", "#16a34a"),
    "rollback": ("rollback", 1.0, "pin", "#ea580c"),
}
ACCURACY_SERIES = "live accuracy"

EVENT_KINDS: tuple[str, ...] = (
    "retrain_started",
    "promoted",
    "rejected",
    "retrain_failed",
    "rollback",
    "degraded",
    "recovered",
    "check_failed",
    "alert_failed",
    "alias_sync_failed",
    "model_refused",
    "model_load_failed",
)
CHECKS_FILTER = "checks"  # the events page also lists the checks' own decisions

STATUS_TEXT = {"ok": "ok", "degraded": "degraded", "no_model": "no model"}
STATUS_COLOR = {"ok": "positive", "degraded": "negative", "no_model": "grey-7"}
VERSION_STATUS = {
    "champion": "champion",
    "retired": "earlier champion",
    "rejected": "rejected",
    "challenger": "challenger",
}


# ---- formatting ----------------------------------------------------------------------------
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
    """``in 18 s``, ``due`` once passed; ``—`` for no time."""
    if ts is None:
        return "—"
    return "due" if ts - now < 1 else f"in {_span(ts - now)}"


def percent(value: float | None, digits: int = 1) -> str:
    """``91.2 %``; an em dash for no value."""
    return "—" if value is None else f"{value * 100:.{digits}f} %"


def number(value: object) -> str:
    """A short form of a value from an event's data (floats to four places)."""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 and value != 0 else f"{round(value, 4)}"
    return "—" if value is None else str(value)


def numbers(data: Mapping[str, object]) -> str:
    """An event's data as ``key value · key value``."""
    return " · ".join(f"{k.replace('_', ' ')} {number(v)}" for k, v in data.items())


# ---- overview --------------------------------------------------------------------------------
class Overview(msgspec.Struct, frozen=True):
    """One read of everything the overview shows."""

    status: ModelStatusView
    checks: list[CheckRecord]
    markers: list[Event]


class StatusCards(msgspec.Struct, frozen=True, kw_only=True):
    """The overview's headline numbers, as display strings."""

    status: str
    status_text: str
    status_color: str
    version: str
    since: str
    since_title: str
    model_type: str
    accuracy: str
    accuracy_value: float | None
    below_threshold: bool
    threshold: str
    samples: str
    samples_hint: str
    last_check: str
    last_check_title: str
    next_check: str
    last_retrain: str
    last_retrain_title: str
    retraining: bool


def status_cards(view: ModelStatusView, now: float, scheduler_enabled: bool) -> StatusCards:
    """Headline numbers of a status view at time ``now``."""
    since = parse_iso(view.champion_since)
    last_check = parse_iso(view.last_check_at)
    last_retrain = parse_iso(view.last_retrain_at)
    judged = view.accuracy is not None and view.samples >= view.min_samples
    below = judged and view.accuracy is not None and view.accuracy < view.threshold
    if view.samples >= view.min_samples:
        hint = f"window {view.window}"
    else:
        hint = f"needs {view.min_samples} to judge"
    decision = view.last_check_decision
    return StatusCards(
        status=view.status,
        status_text=STATUS_TEXT.get(view.status, view.status),
        status_color=STATUS_COLOR.get(view.status, "grey-7"),
        version="—" if view.model_version is None else f"v{view.model_version}",
        since="no champion yet" if since is None else f"since {ago(since, now)}",
        since_title=utc(since),
        model_type=(view.model_type or "").replace("_", " "),
        accuracy=percent(view.accuracy),
        accuracy_value=view.accuracy,
        below_threshold=below,
        threshold=f"threshold {percent(view.threshold)}",
        samples=f"{view.samples} / {view.window}",
        samples_hint=hint,
        last_check=ago(last_check, now) + (f" · {decision.replace('_', ' ')}" if decision else ""),
        last_check_title=utc(last_check),
        next_check=until(parse_iso(view.next_check_at), now) if scheduler_enabled else "off",
        last_retrain=ago(last_retrain, now),
        last_retrain_title=utc(last_retrain),
        retraining=view.retrain_running,
    )


def drift_rows(report: DriftReport | None) -> list[dict[str, Any]]:
    """One table row per feature with its drift statistics and verdict."""
    if report is None:
        return []
    return [
        {
            "feature": f.feature,
            "kind": f.kind,
            "test": f.test,
            "statistic": f"{f.statistic:.3f}",
            "p_value": f"{f.p_value:.3g}",
            "psi": f"{f.psi:.3f}",
            "verdict": "drifted" if f.drifted else "stable",
        }
        for f in report.features
    ]


def drift_summary(report: DriftReport | None) -> str:
    """One line over the drift table."""
    if report is None:
        return "No drift report yet: the next check computes one once a champion has data."
    drifted = sum(f.drifted for f in report.features)
    return (
        f"{drifted} of {len(report.features)} features drifted "
        f"({report.recent_rows} recent rows against {report.reference_rows} training rows)"
    )


# ---- chart -----------------------------------------------------------------------------------
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


def chart_series(
    checks: Sequence[CheckRecord], markers: Sequence[Event], threshold: float
) -> list[dict[str, Any]]:
    """The chart's series: live accuracy with the threshold line, then one per marker kind."""
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
                    "position": "insideEndTop",
                },
                "data": [{"yAxis": threshold}],
            },
        }
    ]
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
        "legend": {"top": 0, "itemWidth": 14, "itemHeight": 10},
        "tooltip": {"trigger": "item", ":formatter": "p => (p.data && p.data.tip) || ''"},
        "xAxis": {"type": "time", "splitLine": {"show": False}},
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


# ---- models, events, playground ---------------------------------------------------------------
def version_rows(versions: Iterable[ModelRecord]) -> list[dict[str, Any]]:
    """One table row per version, newest first, with what the models page shows."""
    rows: list[dict[str, Any]] = []
    for v in versions:
        first, last = v.params.get("window_first_row"), v.params.get("window_last_row")
        champion_acc = v.metrics.get("champion_accuracy")
        rows.append(
            {
                "version": v.version,
                "status": v.status,
                "status_text": VERSION_STATUS.get(v.status, v.status),
                "created": utc(v.created_at),
                "promoted": utc(v.promoted_at),
                "accuracy": percent(v.metrics.get("challenger_accuracy")),
                "champion_accuracy": percent(champion_acc),
                "train_rows": v.params.get("n_samples", "—"),
                "window": f"rows {first}–{last}" if first and last else "—",
                "model_type": v.model_type.replace("_", " "),
                "run_id": v.run_id,
                "reason": v.reason,
                "action": _action(v.status),
            }
        )
    return rows


def _action(status: str) -> str:
    if status == "champion":
        return ""
    return "Roll back" if status == "retired" else "Promote"


def event_rows(events: Iterable[Event]) -> list[dict[str, Any]]:
    """One table row per event with the numbers behind it."""
    return [
        {
            "id": e.id,
            "at": utc(e.at),
            "kind": e.kind,
            "message": e.message,
            "numbers": numbers(e.data),
        }
        for e in events
    ]


def check_rows(checks: Sequence[CheckRecord]) -> list[dict[str, Any]]:
    """The checks' decisions as event-like rows, newest first."""
    return [
        {
            "id": f"check-{i}",
            "at": utc(c.at),
            "kind": f"check: {c.decision.replace('_', ' ')}",
            "message": c.reason,
            "numbers": numbers(
                {
                    "version": c.model_version,
                    "accuracy": None if c.accuracy is None else round(c.accuracy, 4),
                    "samples": c.samples,
                    "drifted_share": c.drift_share,
                }
            ),
        }
        for i, c in reversed(list(enumerate(checks)))
    ]


def synthetic_width(schema: FeatureSchema | None) -> int | None:
    """How many features generated rows need: the schema's, when it is ``feature1..N``.

    ``None`` means the stored data is not synthetic, so generating would be refused.
    """
    if schema is None:
        return 2
    names = tuple(f"feature{i + 1}" for i in range(len(schema.features)))
    numeric = all(f.kind == "numeric" for f in schema.features)
    if schema.names == names and numeric and schema.label_kind == "int":
        return len(names)
    return None
