"""Scenario: schemathesis (every check) against a trained server's served OpenAPI document."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.reliability.harness import ROOT, RelServer, running

HERE = Path(__file__).parent


def run(workdir: Path, mlflow_template: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    """Start a trained server and run schemathesis against it; the outcome and the key."""
    server = RelServer(
        workdir / "st" / "data", {"CONTINUAL_TRAIN_WINDOW": "500"}, template=mlflow_template
    )
    with running(server), server.client() as http:
        http.post("/generate", json={"n_samples": 600, "concept": 0, "seed": 1})
        assert http.post("/retrain").status_code == 200  # a champion, so /predict can answer
        # run from the test's directory (schemathesis keeps a crash cache in the working
        # directory), with the repository importable for the hooks module
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.reliability.st_hooks", "PYTHONPATH": path}
        out = subprocess.run(
            [
                *(sys.executable, "-m", "schemathesis.cli", "--no-color"),
                *("--config-file", str(HERE / "schemathesis.toml")),
                *("run", f"{server.url}/schema/openapi.json", "--checks", "all"),
                *("--header", f"Authorization: Bearer {server.key()}"),
                *("--max-examples", "10", "--workers", "1", "--seed", "1"),
                *("--generation-database", "none", "--request-timeout", "60"),
                *("--max-response-time", "30", "--continue-on-failure"),
            ],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    return out, server.key()
