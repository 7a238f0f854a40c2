"""The drifting scenario against a live server: ``continual demo``.

Trains on concept 0, streams predictions and their feedback, switches to concept 1,
and lets the loop notice, retrain and recover, running ``POST /check`` every
``check_every`` rows (the demo is the clock, so it is deterministic).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec

from continual.adapters.models import synthetic
from continual.client import Client


class Phase(msgspec.Struct):
    """One stretch of the stream and what the loop did during it."""

    name: str
    concept: int
    rows: int = 0
    hits: int = 0
    checks: int = 0
    decisions: dict[str, int] = msgspec.field(default_factory=dict)
    retrains: list[str] = msgspec.field(default_factory=list)

    @property
    def accuracy(self) -> float:
        """Share of predictions in this phase that were right."""
        return self.hits / self.rows if self.rows else 0.0


def run_demo(
    client: Client,
    rows_per_phase: int = 1500,
    batch: int = 50,
    check_every: int = 250,
    seed: int = 7,
    progress: Callable[[int], None] | None = None,
) -> list[Phase]:
    """Run the three phases; return what each saw."""
    if client.status()["model_version"] is None:
        client.generate(2000, concept=0, seed=seed)
        client.retrain("demo: first model")
    phases = [Phase("before drift", 0), Phase("after drift", 1), Phase("after recovery", 1)]
    for index, phase in enumerate(phases):
        if index == 1:
            # let the cooldown after the first model pass, so the drift can be acted on
            time.sleep(float(client.status().get("cooldown_remaining_seconds", 0.0)))
        rows, labels = synthetic(rows_per_phase, 2, phase.concept, seed + 1 + index)
        for start in range(0, rows_per_phase, batch):
            chunk, truth = rows[start : start + batch], labels[start : start + batch]
            preds: list[dict[str, Any]] = client.predict_many(chunk)["predictions"]
            phase.hits += sum(p["prediction"] == y for p, y in zip(preds, truth, strict=True))
            phase.rows += len(chunk)
            client.feedback([(p["prediction_id"], y) for p, y in zip(preds, truth, strict=True)])
            if (start + batch) % check_every == 0:
                result = client.check()
                phase.checks += 1
                phase.decisions[result["decision"]] = phase.decisions.get(result["decision"], 0) + 1
                verdict = result.get("retrain")
                if verdict is not None:
                    word = "promoted" if verdict["promoted"] else "rejected"
                    phase.retrains.append(
                        f"v{verdict['version']} {word} "
                        f"({verdict['challenger_accuracy']:.3f} vs {_fmt(verdict['champion_accuracy'])})"
                    )
                elif result.get("retrain_error"):
                    phase.retrains.append(f"failed: {result['retrain_error']}")
            if progress is not None:
                progress(len(chunk))
    return phases


def _fmt(x: float | None) -> str:
    return "none" if x is None else f"{x:.3f}"


def report(phases: list[Phase]) -> str:
    """A plain-text table of the phases."""
    lines = [f"{'phase':<16}{'concept':>8}{'rows':>7}{'accuracy':>10}  {'checks':<34}retrains"]
    for p in phases:
        checks = ", ".join(f"{k} {v}" for k, v in sorted(p.decisions.items())) or "-"
        lines.append(
            f"{p.name:<16}{p.concept:>8}{p.rows:>7}{p.accuracy:>10.3f}  {checks:<34}{'; '.join(p.retrains) or '-'}"
        )
    return "\n".join(lines)
