"""The scale-out test's figures, from what a user would look at: the load's answers,
nginx's access log, the database, the replicas' logs and the S3 server's log."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime
from typing import Any

import sqlalchemy as sa

PROMOTION_BOUND = 5.0  # seconds: every replica serves a new champion within this
TAKEOVER_BOUND = 30.0  # seconds: a new lease holder after the holder's death


def ts(line: dict[str, Any]) -> float:
    """A log line's time in epoch seconds."""
    return datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).timestamp()


def _busy(logs: list[tuple[str, dict[str, Any]]], until: float) -> list[tuple[float, float]]:
    """When a replica's check was retraining (its later slots are skipped, not lost)."""
    spans, open_at = [], {}
    for rid, line in logs:
        if line.get("event") == "check" and line.get("decision") == "retrain":
            open_at[rid] = ts(line)
        elif line.get("event") in ("retrain_done", "check_job_failed") and rid in open_at:
            spans.append((open_at.pop(rid), ts(line)))
    spans += [(start, until) for start in open_at.values()]  # killed mid-retrain
    return spans


def checks(fleet: Any, interval: float, kill: tuple[float, float], ttl: float) -> dict[str, Any]:
    """Scheduled checks per interval slot: duplicates, and slots with none and why."""
    logs = fleet.logs()
    slots = [int(line["slot"]) for _, line in logs if line.get("event") == "scheduled_check"]
    counts = Counter(slots)
    t_kill, takeover = kill
    excused = [(a - interval, b + interval) for a, b in _busy(logs, t_kill)]
    excused.append((t_kill, t_kill + takeover + interval))
    # a clean stop hands the lease over at once; the next holder's beat takes it
    excused += [(down, down + ttl / 3 + 2 * interval) for _, down, _ in fleet.down[1:]]
    # the holder's previous check still running: APScheduler skips the fire and says so
    overlapped = {
        math.floor(ts(line) / interval + 0.1)
        for _, line in logs
        if "run_check" in line.get("event", "") and "maximum number of running" in line["event"]
    }
    missing = [s for s in range(min(slots), max(slots) + 1) if s not in counts]
    skipped = [s for s in missing if s in overlapped]
    missing = [s for s in missing if s not in overlapped]
    unexplained = [s for s in missing if not any(a <= s * interval <= b for a, b in excused)]
    return {
        "slots": max(slots) - min(slots) + 1,
        "checked": len(counts),
        "duplicates": sum(n - 1 for n in counts.values()),
        "skipped_while_the_previous_check_ran": len(skipped),
        "skipped_while_retraining_or_handing_over": len(missing) - len(unexplained),
        "unexplained_gaps": unexplained,
        "holders": sorted(
            {line["holder"] for _, line in logs if line.get("event") == "scheduled_check"}
        ),
    }


def promotions(fleet: Any, watcher: Any, engine: sa.Engine, since: float) -> dict[str, Any]:
    """For each champion promoted under the watcher: how long until each replica up at the
    time served it, who trained it, who fetched its bytes from MLflow (from S3)."""
    with engine.connect() as conn:
        promoted = conn.execute(
            sa.text("SELECT version, promoted_at FROM model_versions WHERE promoted_at IS NOT NULL")
        ).all()
    logs = fleet.logs()
    out: dict[str, Any] = {}
    for version, at in sorted(promoted, key=lambda r: r[1]):
        trainer = [
            r
            for r, ln in logs
            if ln.get("event") == "champion_swapped"
            and ln.get("version") == version
            and ln.get("kind") == "promoted"
        ]
        fetched = sorted(
            {
                r
                for r, ln in logs
                if ln.get("event") == "model_fetched" and ln.get("version") == version
            }
        )
        delays = {}
        for port in fleet.ports:
            down = [(p, a, b) for p, a, b in fleet.down if p == port]
            if at < since or any(a <= at + PROMOTION_BOUND and b >= at for _, a, b in down):
                continue  # not watched yet, or down within the bound after the promotion
            seen = watcher.serving_since(port, version)
            delays[str(port)] = None if seen is None else round(max(0.0, seen - at), 2)
        out[version] = {
            "trained_by": trainer,
            "fetched_from_mlflow_by": fetched,
            "serving_delay_s": delays,
        }
    return out


def judge(f: dict[str, Any]) -> None:
    """The issue's figures, asserted."""
    assert f["predictions"]["failed"] == [], f["predictions"]
    assert f["rows"]["data_stored"] == f["rows"]["data_acknowledged"], f["rows"]
    assert f["rows"]["feedback_stored"] >= f["rows"]["feedback_accepted"], f["rows"]
    assert f["checks"]["duplicates"] == 0, f["checks"]
    assert f["checks"]["unexplained_gaps"] == [], f["checks"]
    assert f["lease"]["takeover_s"] <= TAKEOVER_BOUND, f["lease"]
    assert f["lease"]["new_holder"] != f["lease"]["killed_holder"], f["lease"]
    watched = {v: p for v, p in f["promotions"].items() if p["serving_delay_s"]}
    assert watched, f["promotions"]  # at least the champion after the kill
    for version, p in watched.items():
        delays = p["serving_delay_s"].values()
        assert all(d is not None and d <= PROMOTION_BOUND for d in delays), (version, p)
        others = [r for r in p["fetched_from_mlflow_by"] if r not in p["trained_by"]]
        assert others, (version, p)  # replicas that did not train it loaded it from MLflow
    assert f["s3"]["model_gets"] >= 1, f["s3"]
    assert f["s3"]["model_objects"] >= 1, f["s3"]
    assert f["nginx"]["dashboard_upstreams"] == 1, f["nginx"]
    assert f["nginx"]["api_upstreams"] == f["replicas"], f["nginx"]
