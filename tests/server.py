"""Start the real ``continual serve`` process on 127.0.0.1 for tests, and stop it by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


MLFLOW_TEMPLATE: Path | None = None  # set for the session by tests/conftest.py


class Server:
    """A ``continual serve`` subprocess with its own data directory and log file."""

    def __init__(
        self,
        data_dir: Path,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        first_run: bool = False,
    ) -> None:
        self.data_dir = data_dir
        # Unless a test is of a new user's first run (``first_run``: defaults throughout), a
        # server starts from a migrated, empty MLflow store (``MLFLOW_TEMPLATE``: ~20 s of
        # CPU less per data directory) and fits one family per retrain (a test that needs
        # the pool sets CONTINUAL_MODELS): HistGradientBoosting's fits over the windows
        # searched were most of a test retrain's time.
        self.first_run = first_run
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        self.env = {
            k: v for k, v in os.environ.items() if k not in ("PYTEST_CURRENT_TEST", "API_KEY")
        }
        # the dashboard (NiceGUI) only where a test asks for it: it adds seconds to each start
        quick = {} if first_run else {"CONTINUAL_MODELS": "logistic_regression"}
        self.env.update(
            {"CONTINUAL_LOG_JSON": "true", "CONTINUAL_DASHBOARD": "false", **quick, **(env or {})}
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> Server:
        """Start and wait until /health answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        store = self.data_dir / "mlflow.db"
        if MLFLOW_TEMPLATE is not None and not self.first_run and not store.exists():
            shutil.copy(MLFLOW_TEMPLATE, store)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "continual",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server did not answer in {timeout} s:\n{self.log()}")

    def key(self) -> str:
        """The API key: configured, or the one the server generated."""
        return self.env.get("API_KEY") or (self.data_dir / "api_key").read_text().strip()

    def client(self, timeout: float = 120) -> httpx.Client:
        """An authenticated httpx client."""
        return httpx.Client(
            base_url=self.url, headers={"authorization": f"Bearer {self.key()}"}, timeout=timeout
        )

    def log(self) -> str:
        """Everything the server wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        """Signal our process and wait for it; kill it if it overstays."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise
