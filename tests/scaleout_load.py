"""The scale-out test's traffic and its observer.

- ``Load``: one client thread through nginx, predictions with a batch of labelled rows
  and a feedback call in between, counting every answer. Rows follow ``concept``, a
  boundary the test flips (``label``): a model of one concept scores about half on the
  other, so flipping it makes the check retrain. Each batch of rows carries an
  Idempotency-Key and is retried with it until acknowledged, as a careful client does.
- ``Watcher``: polls each replica's ``/model-status`` directly (not through nginx) and
  notes when it first served each version.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from typing import Any

import httpx

BATCH = 4  # labelled rows per POST /data of the load
FEEDBACK_AFTER = 2.0  # seconds: every replica has flushed the prediction by then


def label(concept: int, x1: float, x2: float) -> int:
    """The true label under ``concept``: two boundaries at right angles."""
    return int(x1 + x2 > 0) if concept == 0 else int(x1 - x2 > 0)


def rows(n: int, concept: int, seed: int) -> list[dict[str, Any]]:
    """``n`` labelled rows of ``concept``."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x1, x2 = rng.uniform(-2, 2), rng.uniform(-2, 2)
        out.append({"feature1": x1, "feature2": x2, "target": label(concept, x1, x2)})
    return out


class Load(threading.Thread):
    """Steady mixed traffic; the counts a user would notice."""

    def __init__(self, url: str, key: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.key = key
        self.concept = 0
        self._halt = threading.Event()
        self.predictions = 0
        self.failed_predictions: list[str] = []
        self.batches_acked = 0
        self.rows_acked = 0
        self.data_retries = 0
        self.feedback_sent = 0
        self.feedback_accepted = 0
        self.feedback_failed = 0
        self.versions: dict[str, int] = {}

    def stop(self) -> None:
        """Finish the current request and end."""
        self._halt.set()
        if self.is_alive():
            self.join(30)

    def run(self) -> None:
        """Predict, send rows, send feedback for predictions older than FEEDBACK_AFTER."""
        rng = random.Random(7)
        waiting: deque[tuple[float, str, int]] = deque()
        headers = {"authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as http:
            i = 0
            while not self._halt.is_set():
                x1, x2 = rng.uniform(-2, 2), rng.uniform(-2, 2)
                self._predict(http, x1, x2, waiting)
                if i % 3 == 0:
                    self._data(http, f"load-{i}", rows(BATCH, self.concept, seed=i))
                elif i % 3 == 1 and waiting and waiting[0][0] < time.time() - FEEDBACK_AFTER:
                    items = []
                    while waiting and waiting[0][0] < time.time() - FEEDBACK_AFTER:
                        _, pid, y = waiting.popleft()
                        items.append({"prediction_id": pid, "label": y})
                    self._feedback(http, items[:50])
                i += 1
                time.sleep(0.02)

    def _predict(self, http: httpx.Client, x1: float, x2: float, waiting: deque[Any]) -> None:
        self.predictions += 1
        try:
            r = http.post("/predict", json={"features": {"feature1": x1, "feature2": x2}})
        except httpx.HTTPError as exc:
            self.failed_predictions.append(type(exc).__name__)
            return
        if r.status_code != 200:
            self.failed_predictions.append(f"{r.status_code} {r.text[:100]}")
            return
        body = r.json()
        self.versions[body["model_version"]] = self.versions.get(body["model_version"], 0) + 1
        waiting.append((time.time(), body["prediction_id"], label(self.concept, x1, x2)))

    def _data(self, http: httpx.Client, key: str, batch: list[dict[str, Any]]) -> None:
        for _ in range(20):
            try:
                r = http.post("/data", json={"rows": batch}, headers={"idempotency-key": key})
                if r.status_code == 200:
                    self.batches_acked += 1
                    self.rows_acked += len(batch)  # stored once, by this call or an earlier one
                    return
            except httpx.HTTPError:
                pass
            self.data_retries += 1
            time.sleep(0.2)
        raise AssertionError(f"POST /data {key} never acknowledged")

    def _feedback(self, http: httpx.Client, items: list[dict[str, Any]]) -> None:
        self.feedback_sent += len(items)
        try:
            r = http.post("/feedback", json={"items": items})
        except httpx.HTTPError:
            self.feedback_failed += len(items)
            return
        if r.status_code == 200:
            self.feedback_accepted += r.json()["accepted"]
        else:
            self.feedback_failed += len(items)


class Watcher(threading.Thread):
    """When each replica first served each version (epoch seconds), by polling it."""

    def __init__(self, ports: list[int], every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.ports = ports
        self.every = every
        self.first: dict[tuple[int, str], float] = {}
        self._halt = threading.Event()

    def stop(self) -> None:
        """End the polling."""
        self._halt.set()
        if self.is_alive():
            self.join(10)

    def run(self) -> None:
        """Poll every replica each ``every`` seconds; a replica that is down is skipped."""
        with httpx.Client(timeout=2) as http:
            while not self._halt.is_set():
                for port in self.ports:
                    try:
                        r = http.get(f"http://127.0.0.1:{port}/model-status")
                        version = r.json().get("model_version")
                    except (httpx.HTTPError, ValueError):
                        continue
                    if version is not None:
                        self.first.setdefault((port, version), time.time())
                self._halt.wait(self.every)

    def serving_since(self, port: int, version: str) -> float | None:
        """When ``port`` first served ``version`` or a newer one."""
        seen = [t for (p, v), t in self.first.items() if p == port and int(v) >= int(version)]
        return min(seen) if seen else None
