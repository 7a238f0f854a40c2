"""Scenarios: dependencies failing (MLflow, webhook receivers, a database lock).

Each ``run_*`` starts what it needs on 127.0.0.1, returns its figures, and states in its
docstring what "nothing lost" means for it.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.receiver import Receiver
from tests.reliability.harness import (
    RelServer,
    free_port,
    percentile,
    rows_of,
    stored_batches,
    wait_until,
)

ROW = {"feature1": 0.3, "feature2": -0.7}


class Predictor:
    """Predicts in a loop on one connection until stopped; keeps every status and latency."""

    def __init__(self, server: RelServer, pause: float = 0.0) -> None:
        self.server = server
        self.pause = pause
        self.statuses: dict[int | str, int] = {}
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Predictor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _loop(self) -> None:
        with self.server.client(timeout=30) as http:
            for _ in range(1_000_000):  # bounded; stopped by the scenario
                if self._stop.is_set():
                    return
                started = time.perf_counter()
                try:
                    r = http.post("/predict", json={"features": ROW})
                    key: int | str = r.status_code
                    if r.status_code != 200:
                        self.errors.append(r.text[:200])
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                self.latencies.append(time.perf_counter() - started)
                self.statuses[key] = self.statuses.get(key, 0) + 1
                if self.pause:
                    time.sleep(self.pause)

    @property
    def total(self) -> int:
        """Requests sent."""
        return sum(self.statuses.values())

    @property
    def ok(self) -> int:
        """Requests answered 200."""
        return self.statuses.get(200, 0)


# ---- webhook receivers down, slow, 429 ------------------------------------------------------


@dataclass
class WebhookFigures:
    """What broken receivers did to the service."""

    predictions: int = 0
    predictions_failed: int = 0
    predict_p99_ms: float = 0.0
    check_seconds: float = 0.0
    retrain_seconds: float = 0.0
    alert_failed_events: dict[str, int] = field(default_factory=dict)
    attempts: dict[str, list[int]] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/hook/down-token-987"


def run_webhooks(workdir: Path, template: Path, timeout: float = 1.0) -> WebhookFigures:
    """Discord hangs, Slack answers 429, the webhook is down (connection refused).

    "Nothing lost": predictions and checks are not slowed beyond the delivery timeout
    (they never wait for a delivery); every failed delivery is an ``alert_failed`` event
    with its attempts (3 at most), and no receiver is tried more than that.
    """
    figures = WebhookFigures()
    hanging, limited = Receiver("hang", hang_seconds=10), Receiver("429")
    down = _closed_port_url()
    server = RelServer(
        workdir / "webhooks" / "data",
        {
            "DISCORD_WEBHOOK_URL": hanging.url,
            "SLACK_WEBHOOK_URL": limited.url,
            "CONTINUAL_WEBHOOK_URL": down,
            "CONTINUAL_ALERT_TIMEOUT_SECONDS": str(timeout),
            "CONTINUAL_TRAIN_WINDOW": "600",
        },
        template=template,
    )
    try:
        server.start()
        with server.client() as http:
            http.post("/generate", json={"n_samples": 600, "concept": 0, "seed": 1})
            started = time.monotonic()
            r = http.post("/retrain")  # alerts: retrain_started, promoted
            figures.retrain_seconds = round(time.monotonic() - started, 2)
            assert r.status_code == 200, r.text
            with Predictor(server, pause=0.002) as predictor:  # while deliveries fail
                for _ in range(3):
                    started = time.monotonic()
                    assert http.post("/check").status_code == 200
                    figures.check_seconds = max(
                        figures.check_seconds, round(time.monotonic() - started, 3)
                    )
                # deliveries: 3 attempts each, bounded by the timeout and short back-offs
                wait_until(
                    lambda: len(http.get("/events", params={"kind": "alert_failed"}).json()) >= 6,
                    timeout=3 * (timeout + 2) + 20,
                    step=0.2,
                )
            figures.predictions = predictor.total
            figures.predictions_failed = predictor.total - predictor.ok
            figures.predict_p99_ms = round(percentile(predictor.latencies, 0.99) * 1000, 1)
            failed = http.get("/events", params={"kind": "alert_failed", "limit": 100}).json()
        for event in failed:
            channel = event["data"]["channel"]
            figures.alert_failed_events[channel] = figures.alert_failed_events.get(channel, 0) + 1
            figures.attempts.setdefault(channel, []).append(event["data"]["attempts"])
        figures.received = {"discord": len(hanging.received), "slack": len(limited.received)}
        text = str(failed)
        for secret in ("secret-token-123", "down-token-987"):
            if secret in text:
                figures.problems.append(f"an alert_failed event shows {secret}")
    finally:
        server.stop()
        hanging.close()
        limited.close()
    return figures


# ---- the database locked by another writer --------------------------------------------------


@dataclass
class LockFigures:
    """What a writer holding the database lock did to requests."""

    lock_seconds: float = 0.0
    batches_acknowledged: int = 0
    batches_503: int = 0
    batches_500: int = 0
    rows_lost: int = 0
    rows_duplicated: int = 0
    stored_before_retry_of_503: int = 0
    slowest_write_seconds: float = 0.0
    predictions: int = 0
    predictions_ok: int = 0
    predictions_shed_503: int = 0
    prediction_errors: list[str] = field(default_factory=list)
    max_pending: int = 0
    buffer_max: int = 0
    messages: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _hold_lock(db: Path, seconds: float, held: threading.Event) -> None:
    conn = sqlite3.connect(db, timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")  # the write lock; readers carry on (WAL)
        held.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def _pending(http: httpx.Client) -> int:
    text = http.get("/metrics").text
    found = re.search(r"^continual_prediction_log_pending (\S+)$", text, re.M)
    return int(float(found.group(1))) if found else 0


def run_db_locks(
    workdir: Path,
    template: Path,
    locks: tuple[tuple[float, float], ...] = ((2.0, 0.02), (10.0, 0.0)),
    buffer_max: int = 150,  # above the 2 s phase's predictions, below the 10 s phase's
    batches: int = 12,
) -> list[LockFigures]:
    """Another process holds SQLite's write lock, for each (seconds, pause) of ``locks``.

    "Nothing lost": requests wait up to the busy timeout (5 s), then get a clear 503 (never
    a 500); every acknowledged batch is stored once; a batch answered 503 stored nothing
    and is stored once when retried with its key. Predictions (one connection, ``pause`` s apart) keep
    being served from memory until the prediction log is full, then are shed with 503,
    and all recover when the lock goes.
    """
    server = RelServer(
        workdir / "locks" / "data",
        {"CONTINUAL_PREDICTION_BUFFER_MAX": str(buffer_max), "CONTINUAL_TRAIN_WINDOW": "600"},
        template=template,
    )
    out: list[LockFigures] = []
    try:
        server.start()
        with server.client() as http:
            http.post("/generate", json={"n_samples": 600, "concept": 0, "seed": 1})
            assert http.post("/retrain").status_code == 200
        for i, (seconds, pause) in enumerate(locks):
            out.append(_lock_phase(server, seconds, pause, buffer_max, batches, 1000 * (i + 1)))
    finally:
        server.stop()
    return out


def _lock_phase(
    server: RelServer, seconds: float, pause: float, buffer_max: int, batches: int, first: int
) -> LockFigures:
    figures = LockFigures(lock_seconds=seconds, buffer_max=buffer_max)
    acked: set[int] = set()
    refused: set[int] = set()
    lock = threading.Lock()
    held = threading.Event()
    holder = threading.Thread(
        target=_hold_lock, args=(server.data_dir / "continual.db", seconds, held)
    )

    def writer(start: int) -> None:
        with server.client(timeout=60) as http:
            for batch in range(start, start + batches // 3):
                started = time.monotonic()
                r = http.post(
                    "/data",
                    json={"rows": rows_of(batch, 20)},
                    headers={"idempotency-key": f"lock-{batch}"},
                )
                elapsed = time.monotonic() - started
                with lock:
                    figures.slowest_write_seconds = max(figures.slowest_write_seconds, elapsed)
                    if r.status_code == 200:
                        acked.add(batch)
                    elif r.status_code == 503:
                        refused.add(batch)
                        figures.messages.append(r.json()["error"])
                    else:
                        figures.batches_500 += r.status_code >= 500
                        figures.problems.append(f"batch {batch}: {r.status_code} {r.text[:200]}")
                time.sleep(0.2)

    with Predictor(server, pause=pause) as predictor, server.client() as http:
        holder.start()
        held.wait(10)
        writers = [threading.Thread(target=writer, args=(first + i * 100,)) for i in range(3)]
        for t in writers:
            t.start()
        deadline = time.monotonic() + seconds + 30
        while holder.is_alive() and time.monotonic() < deadline:
            figures.max_pending = max(figures.max_pending, _pending(http))
            time.sleep(0.1)
        holder.join(30)
        for t in writers:
            t.join(120)
        wait_until(lambda: _pending(http) == 0, 20, 0.2)
        time.sleep(0.5)  # predictions served after the lock went
    figures.predictions = predictor.total
    figures.predictions_ok = predictor.ok
    figures.predictions_shed_503 = predictor.statuses.get(503, 0)
    figures.prediction_errors = sorted({e.split('"detail"')[0] for e in predictor.errors})
    for error in predictor.errors:  # what the service said its backlog was when it shed
        found = re.search(r'"pending":(\d+)', error)
        if found:
            figures.max_pending = max(figures.max_pending, int(found.group(1)))
    figures.batches_acknowledged = len(acked)
    figures.batches_503 = len(refused)
    with contextlib.closing(server.db()) as conn:
        stored = stored_batches(conn)
    figures.stored_before_retry_of_503 = len([b for b in refused if b in stored])
    with server.client() as http:
        for batch in sorted(refused):
            r = http.post(
                "/data",
                json={"rows": rows_of(batch, 20)},
                headers={"idempotency-key": f"lock-{batch}"},
            )
            if r.status_code == 200:
                acked.add(batch)
            else:
                figures.problems.append(f"retry of {batch}: {r.status_code}")
    with contextlib.closing(server.db()) as conn:
        stored = stored_batches(conn)
    figures.rows_lost = sum(20 for b in acked if b not in stored)
    figures.rows_duplicated = sum(len(p) - len(set(p)) for p in stored.values())
    figures.messages = sorted(set(figures.messages))
    return figures


def events_of(server: RelServer, kind: str) -> list[dict[str, Any]]:
    """Events of one kind, newest first."""
    with server.client() as http:
        return list(http.get("/events", params={"kind": kind, "limit": 1000}).json())
