"""View models: what the pages show, computed from service results by pure functions.

No NiceGUI here, so every number and label the dashboard shows is tested without a
browser. Formatting lives in ``continual.ui.format``, the chart in ``continual.ui.chart``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from continual.core.drift import DriftReport
from continual.core.types import CheckRecord, Event, ModelRecord
from continual.services.monitor import ModelStatusView
from continual.services.quality import QualityReport
from continual.ui.format import ago, numbers, parse_iso, percent, until, utc

EVENT_KINDS: tuple[str, ...] = (
    "retrain_started",
    "promoted",
    "at_capacity",
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

STATUS_TEXT = {
    "ok": "ok",
    "degraded": "degraded",
    "collecting": "collecting",
    "no_model": "no model",
}
# collecting is neither green nor red: nothing is measured yet
STATUS_COLOR = {
    "ok": "positive",
    "degraded": "negative",
    "collecting": "blue-grey-6",
    "no_model": "grey-7",
}
PREPARING = "preparing the tracking store (first run)…"
VERSION_STATUS = {
    "champion": "champion",
    "retired": "earlier champion",
    "rejected": "rejected",
    "challenger": "challenger",
}


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
    last_decision: str
    last_check_title: str
    next_check: str
    last_retrain: str
    last_retrain_title: str
    retraining: bool
    capacity: str  # what the loop waits for when retraining found nothing better
    status_note: str  # the line under the status: a retrain, the rows still to come, capacity


def status_cards(view: ModelStatusView, now: float, scheduler_enabled: bool) -> StatusCards:
    """Headline numbers of a status view at time ``now``."""
    since = parse_iso(view.champion_since)
    last_check = parse_iso(view.last_check_at)
    last_retrain = parse_iso(view.last_retrain_at)
    judged = view.accuracy is not None and view.samples >= view.min_samples
    below = judged and view.accuracy is not None and view.accuracy < view.threshold
    hint = f"judged from {view.min_samples}"
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
        last_check=ago(last_check, now),
        last_decision=decision.replace("_", " ") if decision else "",
        last_check_title=utc(last_check),
        next_check=until(parse_iso(view.next_check_at), now) if scheduler_enabled else "off",
        last_retrain=ago(last_retrain, now),
        last_retrain_title=utc(last_retrain),
        retraining=view.retrain_running,
        capacity=capacity_text(view),
        status_note=status_note(view),
    )


def status_note(view: ModelStatusView) -> str:
    """One line under the status: what runs now, or what the status waits for."""
    if view.retrain_preparing:
        return f"retraining: {PREPARING}"
    if view.retrain_running:
        return "retraining now…"
    if view.status == "collecting":
        return f"not judged yet: {view.samples} of {view.min_samples} rows scored"
    return capacity_text(view)


def capacity_text(view: ModelStatusView) -> str:
    """One line on the capacity state, or "" when the champion is not at capacity."""
    cap = view.capacity
    if cap is None:
        return ""
    n = len(cap.families)
    return (
        f"at capacity since {utc(parse_iso(cap.declared_at))}: best of {n} "
        f"{'family' if n == 1 else 'families'} {percent(cap.best)}; waiting for a change"
    )


def candidate_text(params: dict[str, str]) -> str:
    """What each family of the pool scored on the holdout, from a version's params."""
    parts = []
    for item in params.get("candidates", "").split(","):
        name, _, score = item.partition(":")
        try:
            parts.append(f"{name.replace('_', ' ')} {percent(float(score))}")
        except ValueError:
            continue
    return " · ".join(parts) or "—"


def drift_rows(
    report: DriftReport | None, quality: QualityReport | None = None
) -> list[dict[str, Any]]:
    """One table row per feature with its drift statistics and verdict, and its data
    quality at the last check that counted rows (out of range, unseen categories)."""
    if report is None:
        return []
    counts = {} if quality is None else {q.feature: q for q in quality.features}

    def shown(n: int | None) -> str:
        if n is None or quality is None or not quality.rows:
            return "—"
        return f"{n} ({percent(n / quality.rows)})"

    rows = []
    for f in report.features:
        q = counts.get(f.feature)
        rows.append(
            {
                "feature": f.feature,
                "kind": f.kind,
                "test": f.test,
                "statistic": f"{f.statistic:.3f}",
                "p_value": f"{f.p_value:.3g}",
                "psi": f"{f.psi:.3f}",
                "verdict": "drifted" if f.drifted else "stable",
                "out_of_range": shown(None if q is None else q.out_of_range),
                "unseen": shown(None if q is None else q.unseen),
            }
        )
    return rows


def drift_summary(report: DriftReport | None) -> str:
    """One line over the drift table."""
    if report is None:
        return "No drift report yet: the next check computes one once a champion has data."
    drifted = sum(f.drifted for f in report.features)
    return (
        f"{drifted} of {len(report.features)} features drifted "
        f"({report.recent_rows} recent rows against {report.reference_rows} training rows)"
    )


# ---- models, events ---------------------------------------------------------------------
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
                "window": f"rows {first} to {last}" if first and last else "—",
                "model_type": v.model_type.replace("_", " "),
                "candidates": candidate_text(v.params),
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
