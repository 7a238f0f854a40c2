"""Scenario: schemathesis (every check, nothing filtered) against the served OpenAPI document.

Two servers, the two states the document has: one before any data (the feature schema
fixed by ``CONTINUAL_FEATURES``), one with a model loaded whose feature schema was fixed
by the first data (no ``CONTINUAL_FEATURES``: the document follows the live schema).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.reliability.harness import RelServer, running

# each call near the documented bound of /generate is ~30 s of work here: the fuzzed
# servers document (and enforce) a lower one, so every case schemathesis makes is sent;
# one model family, so each of the ~25 fuzzed retrains fits once (the document and the
# checks do not depend on the pool)
SMALL = {
    "CONTINUAL_MAX_GENERATE_ROWS": "1000",
    "CONTINUAL_TRAIN_WINDOW": "500",
    "CONTINUAL_MODELS": "logistic_regression",
}


def _schemathesis(server: RelServer, cwd: Path) -> subprocess.CompletedProcess[str]:
    # run from the test's directory: schemathesis keeps a crash cache in the working dir
    return subprocess.run(
        [
            *(sys.executable, "-m", "schemathesis.cli", "--no-color"),
            *("run", f"{server.url}/schema/openapi.json", "--checks", "all"),
            *("--header", f"Authorization: Bearer {server.key()}"),
            *("--max-examples", "10", "--workers", "1", "--seed", "1"),
            *("--generation-database", "none", "--request-timeout", "60"),
            *("--max-response-time", "30", "--continue-on-failure"),
        ],
        cwd=cwd,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def run(
    workdir: Path, mlflow_template: Path
) -> tuple[dict[str, subprocess.CompletedProcess[str]], list[str]]:
    """Schemathesis against both servers; the outcome of each, and their keys."""
    outs: dict[str, subprocess.CompletedProcess[str]] = {}
    keys: list[str] = []
    fresh = RelServer(workdir / "st-fresh" / "data", SMALL, template=mlflow_template)
    with running(fresh):
        keys.append(fresh.key())
        outs["before any data (schema configured)"] = _schemathesis(fresh, workdir)
    trained = RelServer(
        workdir / "st-trained" / "data",
        {**SMALL, "CONTINUAL_FEATURES": ""},
        template=mlflow_template,
    )
    with running(trained), trained.client() as http:
        keys.append(trained.key())
        # the first data fixes the schema; then a champion, so /predict can answer
        http.post("/generate", json={"n_samples": 600, "concept": 0, "seed": 1})
        assert http.post("/retrain").status_code == 200
        outs["model loaded (schema fixed by the first data)"] = _schemathesis(trained, workdir)
    return outs, keys
