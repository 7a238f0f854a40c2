"""What every benchmark shares: a live ``continual serve`` on 127.0.0.1, a lean HTTP
client, medians, and writing a table into its own section of ``docs/benchmarks.md``.

The server is a real subprocess (``python -m continual serve``) with its own data
directory; it is stopped by its PID only. The client is ``http.client`` with one
keep-alive connection: at ~0.1 ms per request it adds far less than httpx (~2 ms on
this box) to what is measured.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ApiFailure(RuntimeError):
    """The server answered a benchmark request with an error status."""


class Http:
    """One keep-alive connection to the server; JSON in, JSON out."""

    def __init__(self, port: int, api_key: str, timeout: float = 600.0) -> None:
        self.port = port
        self.timeout = timeout
        self.headers = {"authorization": f"Bearer {api_key}", "content-type": "application/json"}
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(
        self, method: str, path: str, body: bytes | None = None, content_type: str | None = None
    ) -> tuple[int, bytes]:
        """Send one request (reconnecting once if the connection was dropped)."""
        headers = dict(self.headers)
        if content_type:
            headers["content-type"] = content_type
        for attempt in (0, 1):
            try:
                self._conn.request(method, path, body, headers)
                response = self._conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                self._conn.close()
                self._conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=self.timeout
                )
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """A JSON request; raise ``ApiFailure`` on an error status."""
        raw = None if body is None else json.dumps(body).encode()
        status, data = self.request(method, path, raw)
        if status >= 400:
            raise ApiFailure(f"{method} {path}: {status} {data[:300]!r}")
        return json.loads(data) if data else None

    def post(self, path: str, body: Any = None) -> Any:
        """``POST`` JSON."""
        return self.call("POST", path, body)

    def get(self, path: str) -> Any:
        """``GET``."""
        return self.call("GET", path)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


class Server:
    """A ``continual serve`` subprocess with its own data directory, stopped by PID."""

    def __init__(self, env: Mapping[str, str] | None = None, data_dir: Path | None = None) -> None:
        self._own_dir = data_dir is None
        self.root = Path(tempfile.mkdtemp(prefix="continual-bench-")) if data_dir is None else None
        self.data_dir = data_dir or (self.root / "data")  # type: ignore[operator]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_key = secrets.token_urlsafe(24)
        base = {
            "API_KEY": self.api_key,
            "CONTINUAL_SCHEDULER": "false",  # the harness is the clock: it calls POST /check
            "CONTINUAL_LOG_LEVEL": "warning",
            "CONTINUAL_LOG_JSON": "true",
        }
        from continual.settings import ENV_NAMES

        # the server sees only what the benchmark sets, whatever the caller's shell holds
        self.env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
        self.env.update({**base, **(env or {})})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        self.started_at = 0.0
        self.health_after = float("nan")

    def start(self, timeout: float = 90.0) -> Self:
        """Start ``continual serve`` and wait until ``/health`` answers."""
        self.start_process()
        self.health_after = self.wait_for("/health", timeout)
        return self

    def start_process(self) -> None:
        """Start ``continual serve`` on this data directory (and do not wait)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.started_at = time.perf_counter()
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
                cwd=self.data_dir.parent,
            )

    def wait_for(self, path: str, timeout: float) -> float:
        """Poll ``path`` until it answers 200; return seconds since ``start``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()[-3000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", path)
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    return time.perf_counter() - self.started_at
            except OSError:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"{path} did not answer 200 within {timeout} s:\n{self.log()[-3000:]}")

    def http(self, timeout: float = 600.0) -> Http:
        """A new keep-alive client."""
        return Http(self.port, self.api_key, timeout)

    def rss_mib(self) -> float:
        """Resident memory of the server process (not its training worker), in MiB."""
        assert self.proc is not None
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        kib = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        return kib / 1024

    def log(self) -> str:
        """What the server wrote."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop_process(self) -> None:
        """Stop our process (see ``stop_pid``); keep the data directory."""
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_pid(proc)

    def stop(self) -> None:
        """Stop the process and remove a data directory that we made."""
        self.stop_process()
        if self._own_dir and self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:  # the server's side of the story, before its directory goes
            print(f"server log (port {self.port}):\n{self.log()[-4000:]}", file=sys.stderr)
        self.stop()


def stop_pid(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM a process we started, wait, SIGKILL it if it overstays."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def exit_on_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit`` so that ``finally`` blocks stop our servers."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def warm_retrain(http: Http) -> float:
    """One throwaway retrain: the first one in a fresh data dir pays MLflow's table set-up
    (~20 s here). Return its seconds; later numbers are steady state."""
    started = time.perf_counter()
    http.post("/retrain", {"reason": "benchmark warm-up"})
    return time.perf_counter() - started


def pin_blas() -> None:
    """One BLAS and OpenMP thread in this process, as the server pins itself: a fair
    in-process baseline (threadpoolctl alone misses OpenMP, loaded later with sklearn's
    HistGradientBoosting, whose one-row predict then fell to about 1 a second here)."""
    from continual.adapters.models import one_thread

    one_thread()


# ---- statistics -------------------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    """The median (NaN for no values)."""
    got = list(values)
    return statistics.median(got) if got else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` percentile (0-100) by nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


# ---- the report ---------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for a table; ``-`` for missing."""
    if value is None or value != value:  # NaN
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    """One line about where the numbers were taken."""
    import sklearn

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0]
    return (
        f"{os.cpu_count()} cores ({cpu or platform.machine()}), Python {platform.python_version()}, "
        f"scikit-learn {sklearn.__version__}, load average {load:.1f} at the end, "
        f"{time.strftime('%Y-%m-%d')}"
    )


def write_section(name: str, body: str, doc: Path = DOC) -> None:
    """Replace (or append) the section between ``<!-- name:begin -->`` and ``<!-- name:end -->``."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    block = f"{begin}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
    text = (
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + block + "\n"
    )
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
