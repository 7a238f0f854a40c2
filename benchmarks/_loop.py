"""The loop's side of the adaptation benchmark: one stream replayed through a fresh
``continual serve`` over HTTP, and what one (stream, seed, label variant) produced."""

from __future__ import annotations

import queue
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _harness import Http, Server
from _metrics import CheckAt
from _streams import Labels, Stream


@dataclass
class Outcome:
    """One stream, seed and label variant: every learner's per-row correctness, and the
    loop's checks, the families of the versions it promoted, and its wall time."""

    stream: str
    seed: int
    variant: str
    curves: dict[str, list[bool]] = field(default_factory=dict)
    checks: list[CheckAt] | None = None
    families: list[str] = field(default_factory=list)
    first_family: str | None = None
    seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-able, correctness as strings of 0 and 1."""
        out = asdict(self)
        out["curves"] = {k: "".join("1" if c else "0" for c in v) for k, v in self.curves.items()}
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Outcome:
        """The inverse of ``to_json``."""
        curves = {k: [c == "1" for c in v] for k, v in raw.pop("curves").items()}
        checks = raw.pop("checks")
        return cls(
            **raw,
            curves=curves,
            checks=None if checks is None else [CheckAt(**c) for c in checks],
        )


class FeedbackSender:
    """Posts ``/feedback`` one item at a time, in order, from a background thread."""

    def __init__(self, http: Http) -> None:
        self.http = http
        self.queue: queue.Queue[tuple[str, int] | None] = queue.Queue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            try:
                if self.error is None:
                    pid, label = item
                    self.http.post("/feedback", {"items": [{"prediction_id": pid, "label": label}]})
            except BaseException as exc:
                self.error = exc
            finally:
                self.queue.task_done()
        self.queue.task_done()

    def send(self, prediction_id: str, label: int) -> None:
        """Queue one label."""
        self.queue.put((prediction_id, label))

    def drain(self) -> None:
        """Wait until every queued label was accepted; re-raise a failure."""
        self.queue.join()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Stop the thread and close its connection."""
        self.queue.put(None)
        self.thread.join(30)
        self.http.close()


def _first_model(http: Http) -> dict[str, Any]:
    """Train the first model on the warm-up (``POST /check`` with no model does)."""
    first = http.post("/check")
    for _ in range(3):  # on a saturated box the worker's own warm-up can time out first
        verdict = first.get("retrain") or {}
        if verdict.get("promoted"):
            return dict(verdict)
        time.sleep(5)
        first = {"retrain": http.post("/retrain", {"reason": "benchmark: first model"})}
    raise RuntimeError(f"the warm-up did not produce a model: {first}")


def realized_on(
    correct: list[bool], answered_by: list[str], labels: Labels, version: str | None, n: int
) -> float | None:
    """The accuracy realized on the rows an estimate was taken over: the newest ``n``
    predictions ``version`` made, counting those whose label ever comes."""
    if version is None or n <= 0:
        return None
    rows = [i for i in range(len(correct) - 1, -1, -1) if answered_by[i] == version][:n]
    known = [correct[i] for i in rows if labels.labelled[i]]
    return sum(known) / len(known) if known else None


def replay_server(
    stream: Stream,
    variant: str,
    labels: Labels,
    check_every: int,
    env: dict[str, str],
    mlflow_template: Path | None,
) -> Outcome:
    """Replay ``stream`` through a fresh server; the loop's correctness and checks."""
    started = time.perf_counter()
    server = Server(env)
    if mlflow_template is not None:
        server.data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(mlflow_template, server.data_dir / "mlflow.db")
    with server:
        http = server.http()
        warm = [{**x, "target": y} for x, y in stream.warmup]
        for i in range(0, len(warm), 5000):
            http.post("/data", {"rows": warm[i : i + 5000]})
        first = _first_model(http)
        correct: list[bool] = []
        checks: list[CheckAt] = []
        ids: list[str] = []
        answered_by: list[str] = []
        # feedback goes out on its own connection and thread, strictly in row order, while
        # the next rows are predicted; every feedback sent is in before each check, so
        # the server sees the same sequence as a one-request-at-a-time replay
        sender = FeedbackSender(server.http())
        try:
            for i, (x, y) in enumerate(stream.rows):
                got = http.post("/predict", {"features": x})
                correct.append(got["prediction"] == y)
                ids.append(got["prediction_id"])
                answered_by.append(got["model_version"])
                j = labels.due(i)
                if j is not None:
                    sender.send(ids[j], stream.rows[j][1])
                if (i + 1) % check_every == 0:
                    sender.drain()
                    r = http.post("/check")
                    verdict = r.get("retrain") or {}
                    n_est = int(r.get("estimated_samples") or 0)
                    checks.append(
                        CheckAt(
                            i + 1,
                            r["decision"],
                            verdict.get("promoted"),
                            r.get("reason", ""),
                            verdict.get("version"),
                            verdict.get("model_type"),
                            r.get("estimated_accuracy"),
                            n_est,
                            realized_on(
                                correct, answered_by, labels, r.get("model_version"), n_est
                            ),
                        )
                    )
        finally:
            sender.close()
        versions = http.get("/models")["versions"]
        http.close()
    promoted = sorted(
        (v for v in versions if v.get("promoted_at") is not None), key=lambda v: v["promoted_at"]
    )
    out = Outcome(
        stream.name,
        stream.seed,
        variant,
        curves={"continual": correct},
        checks=checks,
        families=[str(v["model_type"]) for v in promoted],
        first_family=str(first.get("model_type")),
        seconds=time.perf_counter() - started,
    )
    retrains = sum(1 for c in checks if c.decision == "retrain")
    print(
        f"  {stream.name} seed {stream.seed} {variant}: loop {sum(correct) / len(correct):.3f}, "
        f"{retrains} retrains, promoted {' '.join(out.families)}, {out.seconds:.0f} s",
        flush=True,
    )
    return out
