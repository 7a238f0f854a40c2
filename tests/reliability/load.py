"""Scenarios under load: hot swaps while predictions run, and a sustained mixed load.

Clients here are asyncio tasks with one keep-alive connection each, so "per connection"
means what it says: requests on one connection are sequential.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.reliability.harness import (
    RelServer,
    descendants,
    percentile,
    rss_mb,
)

ROW = {"feature1": 1.5, "feature2": 1.5}


@dataclass
class Observation:
    """One prediction as a client saw it."""

    connection: int
    sent: float
    received: float
    status: int | str
    version: str | None


def stale_reads(
    observations: list[Observation], epochs: list[tuple[str, float, float]]
) -> list[Observation]:
    """Observations that saw a version older than one their connection saw before.

    ``epochs`` are the promotions in order: (version, request sent, answer received); the
    first epoch is the champion before any swap (sent = received = -inf). A version
    served during [sent, received] of a request must belong to an epoch that began before
    the answer (``epoch.sent <= received``) and ended after the request was sent
    (``next_epoch.received >= sent``). Walking each connection in order, a read is stale
    when no such epoch is at or after the epoch of the connection's previous read.
    """
    stale: list[Observation] = []
    by_connection: dict[int, list[Observation]] = {}
    for ob in observations:
        by_connection.setdefault(ob.connection, []).append(ob)
    for obs in by_connection.values():
        current = 0
        for ob in sorted(obs, key=lambda o: o.sent):
            if ob.version is None:
                continue
            fits = [
                k
                for k in range(current, len(epochs))
                if epochs[k][0] == ob.version
                and epochs[k][1] <= ob.received
                and (k + 1 == len(epochs) or epochs[k + 1][2] >= ob.sent)
            ]
            if not fits:
                stale.append(ob)
                continue
            current = fits[0]
    return stale


@dataclass
class SwapFigures:
    """Predictions during hot swaps."""

    connections: int = 0
    swaps: int = 0
    requests: int = 0
    failed: int = 0
    stale: int = 0
    versions_seen: dict[str, int] = field(default_factory=dict)
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


async def _swaps(
    server: RelServer, connections: int, swaps: int, pause: float
) -> tuple[list[Observation], list[tuple[str, float, float]]]:
    headers = {"authorization": f"Bearer {server.key()}"}
    clients = [
        httpx.AsyncClient(
            base_url=server.url,
            headers=headers,
            timeout=30,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )
        for _ in range(connections + 1)
    ]
    observations: list[Observation] = []
    stop = asyncio.Event()
    clock = time.perf_counter

    async def predict(i: int, client: httpx.AsyncClient) -> None:
        for _ in range(1_000_000):  # bounded; ended by the swap loop
            if stop.is_set():
                return
            sent = clock()
            try:
                r = await client.post("/predict", json={"features": ROW})
                status: int | str = r.status_code
                version = r.json().get("model_version") if r.status_code == 200 else None
            except httpx.HTTPError as exc:
                status, version = type(exc).__name__, None
            observations.append(Observation(i, sent, clock(), status, version))

    async def swap(client: httpx.AsyncClient) -> list[tuple[str, float, float]]:
        current = (await client.get("/models")).json()["champion"]
        epochs = [(current, float("-inf"), float("-inf"))]
        await asyncio.sleep(pause)
        for k in range(swaps):
            target = "1" if current == "2" else "2"
            sent = clock()
            r = await client.post(f"/models/{target}/promote", json={"reason": f"swap {k}"})
            received = clock()
            if r.status_code == 200:
                epochs.append((target, sent, received))
                current = target
            await asyncio.sleep(pause)
        stop.set()
        return epochs

    try:
        tasks = [asyncio.create_task(predict(i, c)) for i, c in enumerate(clients[:-1])]
        epochs = await swap(clients[-1])
        await asyncio.gather(*tasks)
    finally:
        for c in clients:
            await c.aclose()
    return observations, epochs


def run_swaps(
    workdir: Path, template: Path, connections: int = 8, swaps: int = 10, pause: float = 0.3
) -> SwapFigures:
    """``connections`` clients predict while ``swaps`` promotions alternate two versions.

    "Nothing lost": zero failed requests, and no connection ever sees a version older
    than one it saw before (see ``stale_reads``); p50/p99 are reported.
    """
    figures = SwapFigures(connections=connections)
    server = RelServer(
        workdir / "swaps" / "data", {"CONTINUAL_TRAIN_WINDOW": "600"}, template=template
    )
    try:
        server.start()
        with server.client() as http:
            for concept, seed in ((0, 1), (1, 2)):
                http.post("/generate", json={"n_samples": 600, "concept": concept, "seed": seed})
                r = http.post("/retrain")
                assert r.status_code == 200, r.text
                assert r.json()["promoted"], r.text
            for _ in range(20):  # warm the connection path
                http.post("/predict", json={"features": ROW})
        started = time.monotonic()
        observations, epochs = asyncio.run(_swaps(server, connections, swaps, pause))
        figures.seconds = round(time.monotonic() - started, 1)
    finally:
        server.stop()
    figures.swaps = len(epochs) - 1
    figures.requests = len(observations)
    figures.failed = sum(1 for o in observations if o.status != 200)
    figures.stale = len(stale_reads(observations, epochs))
    for o in observations:
        if o.version is not None:
            figures.versions_seen[o.version] = figures.versions_seen.get(o.version, 0) + 1
    latencies = [o.received - o.sent for o in observations]
    figures.p50_ms = round(percentile(latencies, 0.5) * 1000, 2)
    figures.p99_ms = round(percentile(latencies, 0.99) * 1000, 2)
    figures.max_ms = round(max(latencies, default=0.0) * 1000, 2)
    return figures


# ---- a sustained mixed load ------------------------------------------------------------------


@dataclass
class MixedFigures:
    """A few minutes of predict, feedback, data and checks."""

    seconds: float = 0.0
    requests: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0
    worker_rss_start_mb: float = 0.0
    worker_rss_end_mb: float = 0.0
    max_pending: int = 0
    buffer_max: int = 0
    predict_p99_ms: float = 0.0
    rows_acknowledged: int = 0
    rows_stored: int = 0
    problems: list[str] = field(default_factory=list)


def run_mixed(
    workdir: Path, template: Path, seconds: float, buffer_max: int = 20_000, seed: int = 5
) -> MixedFigures:
    """Predict (4 connections), feedback, data and checks for ``seconds``.

    Rows come from one concept with their true labels (predictions get their true label
    back as feedback), so the checks find the champion healthy: this is steady traffic,
    not a drift. "Nothing lost": no request fails; every acknowledged row is stored; the
    server's memory is flat (RSS at the start and the end); the prediction log never
    holds more than its limit (``/metrics`` sampled twice a second).
    """
    from continual.adapters.models import synthetic

    pool_rows, pool_labels = synthetic(5000, 2, 0, seed)
    figures = MixedFigures(buffer_max=buffer_max)
    server = RelServer(
        workdir / "mixed" / "data",
        {"CONTINUAL_PREDICTION_BUFFER_MAX": str(buffer_max), "CONTINUAL_TRAIN_WINDOW": "1000"},
        template=template,
    )
    stop = threading.Event()
    lock = threading.Lock()
    ids: list[tuple[str, int]] = []
    latencies: list[float] = []
    batches = itertools.count(1)
    rng = random.Random(seed)

    def count(kind: str, r: httpx.Response | None) -> None:
        with lock:
            figures.requests[kind] = figures.requests.get(kind, 0) + 1
            if r is None or r.status_code != 200:
                figures.failures[kind] = figures.failures.get(kind, 0) + 1
                if r is not None and len(figures.problems) < 20:
                    figures.problems.append(f"{kind}: {r.status_code} {r.text[:150]}")

    def call(http: httpx.Client, kind: str, *args: Any, **kwargs: Any) -> httpx.Response | None:
        try:
            r = http.post(*args, **kwargs)
        except httpx.HTTPError:
            r = None
        count(kind, r)
        return r

    def predictor() -> None:
        with server.client() as http:
            while not stop.is_set():
                i = rng.randrange(len(pool_rows))
                started = time.perf_counter()
                r = call(http, "predict", "/predict", json={"features": pool_rows[i]})
                with lock:
                    latencies.append(time.perf_counter() - started)
                    if r is not None and r.status_code == 200 and len(ids) < 10_000:
                        ids.append((r.json()["prediction_id"], pool_labels[i]))

    def feedback() -> None:
        with server.client() as http:
            while not stop.is_set():
                with lock:
                    chunk, ids[:] = ids[:50], ids[50:]
                if chunk:
                    items = [{"prediction_id": i, "label": label} for i, label in chunk]
                    key = f"fb-{next(batches)}"
                    call(
                        http,
                        "feedback",
                        "/feedback",
                        json={"items": items},
                        headers={"idempotency-key": key},
                    )
                time.sleep(0.05)

    def data() -> None:
        with server.client() as http:
            while not stop.is_set():
                batch = next(batches)
                start = rng.randrange(len(pool_rows) - 100)
                rows = [
                    {**pool_rows[j], "target": pool_labels[j]} for j in range(start, start + 100)
                ]
                r = call(
                    http,
                    "data",
                    "/data",
                    json={"rows": rows},
                    headers={"idempotency-key": f"data-{batch}"},
                )
                if r is not None and r.status_code == 200:
                    with lock:
                        figures.rows_acknowledged += 100
                time.sleep(0.05)

    def checks() -> None:
        with server.client() as http:
            while not stop.wait(2.0):
                call(http, "check", "/check")

    def metrics() -> None:
        with server.client() as http:
            while not stop.wait(0.5):
                try:
                    text = http.get("/metrics").text
                except httpx.HTTPError:
                    continue
                found = re.search(r"^continual_prediction_log_pending (\S+)$", text, re.M)
                if found:
                    with lock:
                        figures.max_pending = max(figures.max_pending, int(float(found.group(1))))

    try:
        server.start()
        with server.client() as http:
            http.post("/generate", json={"n_samples": 1000, "concept": 0, "seed": 1})
            assert http.post("/retrain").status_code == 200
        workers = [predictor] * 4 + [feedback, data, checks, metrics]
        threads = [threading.Thread(target=w, daemon=True) for w in workers]
        started = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(min(5.0, seconds / 4))  # warm-up: caches, pools, first flushes
        kids = descendants(server.pid)
        figures.rss_start_mb = round(rss_mb(server.pid), 1)
        figures.worker_rss_start_mb = round(sum(rss_mb(p) for p in kids), 1)
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))
        figures.rss_end_mb = round(rss_mb(server.pid), 1)
        figures.worker_rss_end_mb = round(sum(rss_mb(p) for p in descendants(server.pid)), 1)
        stop.set()
        for t in threads:
            t.join(60)
        figures.seconds = round(time.monotonic() - started, 1)
        with contextlib.closing(server.db()) as conn:
            (figures.rows_stored,) = conn.execute(
                "SELECT count(*) FROM labelled_rows WHERE batch_key LIKE 'data-%'"
            ).fetchone()
    finally:
        stop.set()
        server.stop()
    figures.predict_p99_ms = round(percentile(latencies, 0.99) * 1000, 2)
    return figures
