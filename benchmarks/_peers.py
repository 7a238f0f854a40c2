"""The learners beside the loop, in process, and the on-disk cache of what they scored.

- River's ``ARFClassifier``, ``SRPClassifier`` and ``LeveragingBaggingClassifier`` (10
  models each; Leveraging Bagging over Hoeffding trees) and
  ``HoeffdingAdaptiveTreeClassifier``: they learn the warm-up, then test-then-train on
  every label when (and if) it arrives, as the label schedule says.
- ``never retrained``: the service's own pipeline of one family fitted once on the
  warm-up, the way the original design served one model forever (the benchmark shows
  the family the loop's first model was).

River's learners are slow (5 to 30 ms a row for the four on this box) and their figures
depend only on the rows, the label schedule and River, so they are cached under
``benchmarks/.cache/``, keyed by a hash of exactly those; so are the oracles. Rerunning
the loop does not recompute them; changing a stream does.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from _streams import CACHE, Labels, Stream, digest, write_json

PEERS = ("ARF", "SRP", "LevBag", "HAT")
PEER_VERSION = 1  # bump when the peers' set-up changes: every cached figure is redone


def _river(kind: str, seed: int) -> Any:
    from river import ensemble, forest, tree

    if kind == "ARF":
        return forest.ARFClassifier(n_models=10, seed=seed)
    if kind == "SRP":
        return ensemble.SRPClassifier(n_models=10, seed=seed)
    if kind == "LevBag":
        return ensemble.LeveragingBaggingClassifier(
            model=tree.HoeffdingTreeClassifier(), n_models=10, seed=seed
        )
    return tree.HoeffdingAdaptiveTreeClassifier(seed=seed)


def peer_path(stream: Stream, variant: str, labels: Labels) -> Path:
    """Where the River peers' figures for this stream, seed and label schedule live."""
    import river

    key = digest(
        PEER_VERSION, river.__version__, stream.warmup, stream.rows, labels.delay, labels.labelled
    )
    return CACHE / "peers" / f"{stream.name}-seed{stream.seed}-{variant}-{key}.json"


def cached_peers(stream: Stream, variant: str, labels: Labels) -> dict[str, list[bool]] | None:
    """The River peers' per-row correctness from the cache, if it is there."""
    path = peer_path(stream, variant, labels)
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    return {k: [c == "1" for c in v] for k, v in raw["correct"].items()}


def run_peers(stream: Stream, variant: str, labels: Labels) -> dict[str, list[bool]]:
    """Test-then-train every River peer on ``stream`` (or read them from the cache)."""
    got = cached_peers(stream, variant, labels)
    if got is not None:
        return got
    from continual.adapters.models import one_thread

    one_thread()
    out: dict[str, list[bool]] = {}
    seconds: dict[str, float] = {}
    for kind in PEERS:
        started = time.perf_counter()
        model = _river(kind, stream.seed)
        for x, y in stream.warmup:
            model.learn_one(x, y)
        correct: list[bool] = []
        for i, (x, y) in enumerate(stream.rows):
            correct.append(model.predict_one(x) == y)
            j = labels.due(i)
            if j is not None:
                model.learn_one(*stream.rows[j])
        out[kind] = correct
        seconds[kind] = time.perf_counter() - started
    write_json(
        peer_path(stream, variant, labels),
        {
            "correct": {k: "".join("1" if c else "0" for c in v) for k, v in out.items()},
            "seconds": seconds,
        },
    )
    return out


def never_retrained(stream: Stream, family: str) -> list[bool]:
    """The service's ``family`` pipeline fitted once on the warm-up, scored on every row."""
    from continual.adapters.models import CompiledModel, fit
    from continual.core.schema import infer_schema

    first, label = stream.warmup[0]
    schema = infer_schema({**first, "target": label}, "target", "warmup[0]")
    pipeline = fit(
        family,  # type: ignore[arg-type]
        schema,
        [r for r, _ in stream.warmup],
        [y for _, y in stream.warmup],
        42,
    )
    model = CompiledModel.of(pipeline, schema)
    predicted = model.labels_of(model.predict_rows([r for r, _ in stream.rows]))
    return [p == y for p, (_, y) in zip(predicted, stream.rows, strict=True)]
