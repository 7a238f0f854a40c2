"""Reliability figures: the scenarios of tests/reliability, run longer, as docs/reliability.md
reports them.

Each scenario starts real processes on 127.0.0.1 (``python -m continual serve``, SQLite
files, an MLflow store or server, local webhook receivers) and returns what it saw:
trials, rows acknowledged, rows lost, failures. The CI suite runs the same code with
smaller counts and asserts on it.

    uv run python benchmarks/reliability.py                     # everything (~20 min idle)
    uv run python benchmarks/reliability.py --only ingest,swaps --ingest-trials 30
    uv run python benchmarks/reliability.py --json figures.json --write   # update the docs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.reliability import (  # noqa: E402 - after the path is set
    crash_ingest,
    crash_retrain,
    disk,
    load,
    outages,
    registry,
)
from tests.reliability.harness import MlflowServer  # noqa: E402

DOC = ROOT / "docs" / "reliability.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"
INIT_MLFLOW = """
import sys
from pathlib import Path
from continual.adapters import tracking
tracking.configure("sqlite:///" + sys.argv[1], Path(sys.argv[2]), 10, 0)
import mlflow
mlflow.search_experiments()
"""


def template(workdir: Path) -> Path:
    """A migrated, empty MLflow store, copied into every data directory."""
    db = workdir / "mlflow-template.db"
    subprocess.run(
        [sys.executable, "-c", INIT_MLFLOW, str(db), str(workdir)], check=True, timeout=600
    )
    return db


def with_mlflow(workdir: Path, mlflow_db: Path, run: Callable[[Path, MlflowServer], Any]) -> Any:
    """Run a scenario against a fresh MLflow tracking server."""
    server = MlflowServer(workdir / "mlflow", mlflow_db).start()
    try:
        return run(workdir, server)
    finally:
        server.stop()


def scenarios(args: argparse.Namespace) -> dict[str, Callable[[Path, Path], Any]]:
    """Name -> a function of (workdir, template) returning figures."""
    return {
        "ingest": lambda w, t: crash_ingest.run(w, t, trials=args.ingest_trials, lanes=2),
        "retrain": lambda w, t: crash_retrain.run(w, t, rounds=args.retrain_rounds),
        "mlflow": lambda w, t: with_mlflow(w, t, registry.run_outage),
        "trust": lambda w, t: with_mlflow(w, t, registry.run_trust),
        "webhooks": outages.run_webhooks,
        "locks": outages.run_db_locks,
        "swaps": lambda w, t: load.run_swaps(w, t, connections=16, swaps=10),
        "mixed": lambda w, t: load.run_mixed(w, t, seconds=args.mixed_seconds),
        "disk": lambda w, t: (
            [disk.run(w, t, "fsize")] + ([disk.run(w, t, "tmpfs")] if disk.can_mount() else [])
        ),
    }


def plain(value: Any) -> Any:
    """Figures as JSON-ready data."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return value


def _row(*cells: Any) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def markdown(figures: dict[str, Any], seconds: float, args: argparse.Namespace) -> str:
    """The figures as the tables of docs/reliability.md."""
    lines = [
        f"Run on {platform.node() or 'this machine'}: {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}, {seconds / 60:.0f} min, with",
        "",
        "```bash",
        "uv run python benchmarks/reliability.py " + " ".join(sys.argv[1:]),
        "```",
        "",
        _row("scenario", "trials / load", "acknowledged", "lost", "failures seen", "notes"),
        _row(*["---"] * 6),
    ]
    if "ingest" in figures:
        f = figures["ingest"]
        lines.append(
            _row(
                "kill -9 during ingest",
                f"{f['trials']} kills",
                f"{f['rows_acknowledged']} rows ({f['batches_acknowledged']} batches)",
                f"{f['rows_lost']} rows",
                f"{f['half_written_batches']} half batches, {f['rows_duplicated']} duplicates, "
                f"{f['integrity_failures']} integrity failures",
                f"{f['unanswered']} unanswered batches retried: {f['unanswered_but_committed']} "
                f"had been committed (answered `duplicate`), {f['retries_stored']} stored then",
            )
        )
    if "retrain" in figures:
        f = figures["retrain"]
        steps = ", ".join(f"{k} {v}" for k, v in sorted(f["interrupted"].items()))
        lines.append(
            _row(
                "kill -9 during a retrain",
                f"{f['trials']} kills ({steps})",
                f"{f['champions_checked']} restarts checked",
                "0 champions" if not f["split_brain"] else f"{f['split_brain']} split",
                f"{f['split_brain']} disagreements, {f['unverified_loads']} unverified loads, "
                f"{f['integrity_failures']} integrity failures",
                f"{f['orphan_versions']} registry versions with no database record, "
                f"{f['temp_files_left']} temp files left",
            )
        )
    if "mlflow" in figures:
        f = figures["mlflow"]
        lines.append(
            _row(
                "MLflow hanging, then stopped",
                f"{f['predictions']} predictions",
                f"{f['predictions'] - f['predictions_failed']} answered",
                f"{f['predictions_failed']} failed",
                f"retrains: {f['retrain_status']} in {f['retrain_seconds']} s",
                f"{f['failure_events']} events, {f['failure_alerts']} alerts; back: version "
                f"{f['recovered_version']}, alias {f['alias_after_recovery']}",
            )
        )
    if "trust" in figures:
        f = figures["trust"]
        lines.append(
            _row(
                "a model the service did not produce",
                "a foreign version, a tampered artifact",
                f"served {f['served_while_foreign_alias']} (the database's)",
                "-",
                f"promote foreign: {f['promote_foreign']}; after tampering /ready "
                f"{f['ready_after_tamper']}, predict {f['predict_after_tamper']}",
                f"{len(f['refused_events'])} model_refused event; command ran: "
                f"{f['command_ran']}; alias moved back to {f['alias_after_restart']}",
            )
        )
    if "webhooks" in figures:
        f = figures["webhooks"]
        lines.append(
            _row(
                "receivers hanging / 429 / down",
                f"{f['predictions']} predictions",
                f"{f['predictions'] - f['predictions_failed']} answered",
                f"{f['predictions_failed']} failed",
                f"alert_failed: {f['alert_failed_events']}, attempts {f['attempts']}",
                f"p99 {f['predict_p99_ms']} ms, slowest check {f['check_seconds']} s, "
                f"received {f['received']}",
            )
        )
    for f in figures.get("locks", []):
        lines.append(
            _row(
                f"database locked {f['lock_seconds']:g} s",
                f"{f['batches_acknowledged'] + f['batches_503']} batches, "
                f"{f['predictions']} predictions",
                f"{f['batches_acknowledged']} batches",
                f"{f['rows_lost']} rows",
                f"{f['batches_503']} x 503, {f['batches_500']} x 500; "
                f"{f['predictions_shed_503']} predictions shed",
                f"slowest write {f['slowest_write_seconds']:.1f} s; log max {f['max_pending']} "
                f"of {f['buffer_max']}",
            )
        )
    if "swaps" in figures:
        f = figures["swaps"]
        lines.append(
            _row(
                f"{f['swaps']} hot swaps under load",
                f"{f['requests']} predictions on {f['connections']} connections",
                f"{f['requests'] - f['failed']} answered",
                f"{f['failed']} failed",
                f"{f['stale']} stale versions",
                f"p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms, max {f['max_ms']} ms",
            )
        )
    if "mixed" in figures:
        f = figures["mixed"]
        total = sum(f["requests"].values())
        lines.append(
            _row(
                f"mixed load {f['seconds']:.0f} s",
                f"{total} requests {f['requests']}",
                f"{f['rows_acknowledged']} rows",
                f"{f['rows_acknowledged'] - f['rows_stored']} rows",
                f"failures {f['failures'] or 0}",
                f"RSS {f['rss_start_mb']} -> {f['rss_end_mb']} MB (worker "
                f"{f['worker_rss_start_mb']} -> {f['worker_rss_end_mb']} MB); log max "
                f"{f['max_pending']} of {f['buffer_max']}; p99 {f['predict_p99_ms']} ms",
            )
        )
    for f in figures.get("disk", []):
        lines.append(
            _row(
                f"disk full ({f['mode']})",
                f"{f['batches_acknowledged'] + sum(f['refusals'].values())} batches",
                f"{f['batches_acknowledged']} batches",
                f"{f['rows_lost']} rows; {f['refused_lost_on_retry']} refused batches lost",
                f"refusals {f['refusals']}; integrity {f['integrity']}",
                f"served while full {f['served_while_full']}; after: writes "
                f"{f['writes_after_recovery']}, retrain {f['retrain_after_recovery']}",
            )
        )
    del args
    return "\n".join(lines)


def write_doc(text: str) -> None:
    """Replace the figures section of docs/reliability.md."""
    doc = DOC.read_text()
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main() -> None:
    """Run the scenarios, print the tables, optionally keep JSON and update the docs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--ingest-trials", type=int, default=100)
    parser.add_argument("--retrain-rounds", type=int, default=3, help="kills per step")
    parser.add_argument("--mixed-seconds", type=float, default=180.0)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--write", action="store_true", help="update docs/reliability.md")
    args = parser.parse_args()
    wanted = [s for s in args.only.split(",") if s]
    started = time.monotonic()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="continual-reliability-") as tmp:
        workdir = Path(tmp)
        mlflow = template(workdir)
        for name, run in scenarios(args).items():
            if wanted and name not in wanted:
                continue
            t0 = time.monotonic()
            print(f"== {name} ...", file=sys.stderr, flush=True)
            result = plain(run(workdir / name, mlflow))
            figures[name] = result
            print(
                f"== {name}: {time.monotonic() - t0:.0f} s\n{json.dumps(result, indent=1)}",
                file=sys.stderr,
                flush=True,
            )
    text = markdown(figures, time.monotonic() - started, args)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    if args.write:
        write_doc(text)


if __name__ == "__main__":
    main()
