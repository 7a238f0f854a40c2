"""``continual demo`` runs the drifting scenario against a live server and reports it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.server import Server


def test_demo_shows_drift_retrain_and_recovery(tmp_path: Path, mlflow_template: Path) -> None:
    """Accuracy is high before the drift, a retrain is promoted after it, and it recovers."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(mlflow_template, data / "mlflow.db")
    env = {"API_KEY": "k" * 32, "CONTINUAL_SCHEDULER": "false", "CONTINUAL_COOLDOWN_SECONDS": "0"}
    srv = Server(data, env).start()
    try:
        out = subprocess.run(
            [sys.executable, "-m", "continual", "demo", "--rows", "750", "--check-every", "250"],
            env={**os.environ, **env, "CONTINUAL_URL": srv.url},
            capture_output=True,
            text=True,
            timeout=240,
            check=True,
        )
    finally:
        srv.stop()
    lines = {
        line.split("  ")[0].strip(): line
        for line in out.stdout.splitlines()
        if line.startswith(("before", "after"))
    }
    assert set(lines) == {"before drift", "after drift", "after recovery"}, out.stdout
    accuracy = {name: float(line.split()[4]) for name, line in lines.items()}
    assert accuracy["before drift"] > 0.9
    assert accuracy["after recovery"] > 0.9
    assert accuracy["after drift"] < accuracy["before drift"]
    assert "v2 promoted" in lines["after drift"]
    assert out.stderr == ""  # off a terminal the progress bar stays quiet
