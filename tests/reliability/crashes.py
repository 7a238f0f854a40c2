"""Both crash scenarios at once: each spends most of its time restarting processes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from tests.reliability import crash_ingest, crash_retrain
from tests.reliability.harness import scale


def run(workdir: Path, template: Path) -> dict[str, Any]:
    """Run both crash scenarios at once; their figures, by name."""
    out: dict[str, Any] = {}

    def ingest() -> None:
        out["ingest"] = crash_ingest.run(workdir, template, trials=scale(20), lanes=1)

    def retrain() -> None:
        out["retrain"] = crash_retrain.run(workdir, template, rounds=scale(1))

    threads = [threading.Thread(target=ingest), threading.Thread(target=retrain)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(1800)
    return out
