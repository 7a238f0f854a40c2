"""Real processes for the reliability suite: servers killed by PID, SQLite read from the
outside, a TCP proxy that can hang or refuse, and a record of every secret and log.

Everything listens on and connects to 127.0.0.1. Every loop is bounded in count and in
time, and only processes started here are signalled, each by its PID.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.server import Server, free_port

ROOT = Path(__file__).resolve().parents[2]
FEATURES = "feature1:numeric,feature2:numeric,target:int"

# every secret handed to a server and every log it wrote: checked at the end of the run
SECRETS: set[str] = set()
LOGS: set[Path] = set()
# figures recorded by the scenarios (printed at the end of the run, kept for the docs)
FIGURES: dict[str, dict[str, Any]] = {}


class Background:
    """Scenarios started at the beginning of the run, two at a time, beside the others.

    Most of a scenario's time is waiting (for a lock, a timeout, a process to start), so
    running two of them beside the foreground tests keeps a 2-core box busy. A test asks
    for its scenario's figures with ``result``; a scenario that was not started in the
    background (a single test run alone) runs there and then."""

    def __init__(self) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="background")
        self.futures: dict[str, concurrent.futures.Future[Any]] = {}

    def submit(self, name: str, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` under ``name``."""
        self.futures[name] = self.pool.submit(fn, *args)

    def result(self, name: str, fallback: Callable[[], Any], timeout: float = 1200) -> Any:
        """The figures of ``name``: from the background if it ran there, else ``fallback()``."""
        future = self.futures.get(name)
        return fallback() if future is None else future.result(timeout)


BACKGROUND = Background()


def scale(n: int) -> int:
    """``n`` times ``CONTINUAL_RELIABILITY_SCALE`` (default 1): the benchmark's knob."""
    return max(1, round(n * float(os.environ.get("CONTINUAL_RELIABILITY_SCALE", "1"))))


def new_key() -> str:
    """A fresh API key, remembered so that no log may ever show it."""
    key = "rel-" + secrets.token_urlsafe(24)
    SECRETS.add(key)
    return key


def record(name: str, figures: Mapping[str, Any]) -> None:
    """Keep a scenario's figures for the summary (and the benchmark's report)."""
    FIGURES[name] = dict(figures)


def wait_until(cond: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """Poll ``cond`` until it holds or ``timeout`` seconds pass; return whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def descendants(pid: int) -> list[int]:
    """Every process started (transitively) by ``pid``, from /proc, children first."""
    out: list[int] = []
    todo = [pid]
    for _ in range(1000):  # bounded: a process tree here has a handful of members
        if not todo:
            break
        current = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                kids = Path(f"/proc/{current}/task/{task}/children").read_text().split()
            except OSError:
                continue
            for kid in map(int, kids):
                if kid not in out:
                    out.append(kid)
                    todo.append(kid)
    return out


def rss_mb(pid: int) -> float:
    """Resident memory of one process in MB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class RelServer(Server):
    """``python -m continual serve`` as a user starts it, with a data dir and a kill switch.

    ``fsize`` caps the size of any file the server (and its worker) may write: the
    portable way to run out of disk without root.
    """

    def __init__(
        self,
        data_dir: Path,
        env: Mapping[str, str] | None = None,
        template: Path | None = None,
        fsize: int | None = None,
    ) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        if template is not None and not (data_dir / "mlflow.db").exists():
            shutil.copy(template, data_dir / "mlflow.db")
        base = {
            "API_KEY": new_key(),
            "CONTINUAL_DASHBOARD": "false",
            "CONTINUAL_SCHEDULER": "false",
            "CONTINUAL_FEATURES": FEATURES,
            "CONTINUAL_COOLDOWN_SECONDS": "0",
            "CONTINUAL_PREDICTION_FLUSH_SECONDS": "0.2",
        }
        base.update(env or {})
        super().__init__(data_dir, base)
        self.fsize = fsize
        self.children: list[int] = []
        for name in ("DISCORD_WEBHOOK_URL", "SLACK_WEBHOOK_URL", "CONTINUAL_WEBHOOK_URL"):
            if self.env.get(name):
                SECRETS.add(self.env[name])
        LOGS.add(self.log_path)

    @property
    def pid(self) -> int:
        """The server's PID (it must have been started)."""
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 90) -> RelServer:
        """Start and wait until /health answers (the log file is appended to)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fsize = self.fsize

        def limit() -> None:
            if fsize is not None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, resource.RLIM_INFINITY))

        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "continual", "serve"),
                    *("--port", str(self.port), "--data-dir", str(self.data_dir)),
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # only setrlimit runs between fork and exec; the threads here hold no locks it needs
                preexec_fn=limit if fsize is not None else None,  # noqa: PLW1509
                cwd=self.data_dir.parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            time.sleep(0.05)
        raise TimeoutError(f"server did not answer in {timeout} s:\n{self.log()[-3000:]}")

    def kill9(self, tree: list[int] | None = None) -> None:
        """SIGKILL the server and every process it started (a crash of the whole service).

        ``tree`` (from ``descendants``, read beforehand) saves reading /proc at the moment
        of the kill, when every millisecond moves the kill to a later step."""
        if self.proc is None or self.proc.poll() is not None:
            return
        tree = descendants(self.proc.pid) if tree is None else tree
        self.proc.kill()
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(20)
        for pid in tree:
            wait_until(lambda p=pid: not Path(f"/proc/{p}").exists(), 5)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        """Stop gracefully, then make sure no child of ours is left behind."""
        tree = descendants(self.proc.pid) if self.proc and self.proc.poll() is None else []
        try:
            return super().stop(sig, timeout)
        finally:
            for pid in tree:
                if wait_until(lambda p=pid: not Path(f"/proc/{p}").exists(), 5):
                    continue
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def client(self, timeout: float = 120) -> httpx.Client:
        """An authenticated client with one keep-alive connection."""
        return httpx.Client(
            base_url=self.url,
            headers={"authorization": f"Bearer {self.key()}"},
            timeout=timeout,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )

    def db(self) -> sqlite3.Connection:
        """A connection to the server's SQLite file, from outside the server."""
        conn = sqlite3.connect(self.data_dir / "continual.db", timeout=10)
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    def integrity(self) -> str:
        """``PRAGMA integrity_check`` of the database ("ok" when sound)."""
        with contextlib.closing(self.db()) as conn:
            return ";".join(r[0] for r in conn.execute("PRAGMA integrity_check"))

    def lines(self, event: str) -> list[dict[str, Any]]:
        """The JSON log lines with this ``event``."""
        out = []
        for raw in self.log().splitlines():
            if f'"{event}"' not in raw:
                continue
            with contextlib.suppress(ValueError):
                line = json.loads(raw)
                if line.get("event") == event:
                    out.append(line)
        return out


def mlflow_state(db: Path, model: str = "continual") -> dict[str, Any]:
    """Runs, registered versions and the champion alias, read from MLflow's SQLite store."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
        conn.execute("PRAGMA busy_timeout=10000")
        runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        versions = [
            str(v)
            for (v,) in conn.execute(
                "SELECT version FROM model_versions WHERE name = ? ORDER BY version", (model,)
            )
        ]
        alias = conn.execute(
            "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = 'champion'",
            (model,),
        ).fetchone()
    return {"runs": runs, "versions": versions, "alias": None if alias is None else str(alias[0])}


def sha256_file(path: Path) -> str:
    """Hex digest of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


@dataclass
class Proxy:
    """A TCP proxy on 127.0.0.1 in front of ``target``: ``forward``, ``hang`` or ``refuse``.

    ``hang`` accepts connections and never answers (a stuck dependency); ``refuse`` closes
    each connection at once (a stopped one); ``forward`` relays bytes both ways.
    """

    target: tuple[str, int]
    mode: str = "forward"
    port: int = 0
    _sock: socket.socket = field(init=False)
    _stop: threading.Event = field(default_factory=threading.Event)
    _held: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self._sock.settimeout(0.2)
        self.port = int(self._sock.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """The proxy's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def set(self, mode: str) -> None:
        """Switch mode; connections already held or relayed are dropped."""
        assert mode in ("forward", "hang", "refuse")
        self.mode = mode
        self._drop()

    def _drop(self) -> None:
        with self._lock:
            held, self._held = self._held, []
        for s in held:
            with contextlib.suppress(OSError):
                s.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            if self.mode == "refuse":
                conn.close()
                continue
            with self._lock:
                self._held.append(conn)
            if self.mode == "forward":
                threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            conn.close()
            return
        with self._lock:
            self._held.append(upstream)

        def pipe(src: socket.socket, dst: socket.socket) -> None:
            with contextlib.suppress(OSError):
                while data := src.recv(65536):
                    dst.sendall(data)
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

        threading.Thread(target=pipe, args=(upstream, conn), daemon=True).start()
        pipe(conn, upstream)

    def close(self) -> None:
        """Stop listening and drop every connection."""
        self._stop.set()
        self._drop()
        self._sock.close()


class MlflowServer:
    """MLflow's tracking server (its FastAPI app under uvicorn) over a SQLite store.

    Started as uvicorn directly: ``mlflow server`` also starts a job runner whose
    consumers outlive it and whose start-up takes a minute on a busy 2-core box.
    """

    def __init__(self, workdir: Path, template: Path) -> None:
        self.dir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        db = workdir / "mlflow.db"
        if not db.exists():
            shutil.copy(template, db)
        self.db = db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "mlflow-server.log"
        store = f"sqlite:///{db}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
            "_MLFLOW_SERVER_FILE_STORE": store,
            "_MLFLOW_SERVER_REGISTRY_STORE": store,
            "_MLFLOW_SERVER_ARTIFACT_DESTINATION": str(workdir / "artifacts"),
            "_MLFLOW_SERVER_SERVE_ARTIFACTS": "true",
            "_MLFLOW_SERVER_ARTIFACT_ROOT": "mlflow-artifacts:/",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180) -> MlflowServer:
        """Start and wait for /health."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "uvicorn", "--host", "127.0.0.1"),
                    *("--port", str(self.port), "mlflow.server.fastapi_app:app"),
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
            )
        ok = wait_until(self._healthy, timeout, 0.2)
        if not ok:
            self.stop()
            raise TimeoutError(f"MLflow did not start in {timeout} s")
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(self.log_path.read_text(errors="replace")[-3000:])
        try:
            return httpx.get(self.url + "/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        """SIGTERM our process (and anything it started), SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        tree = descendants(self.proc.pid)
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def copy_template(template: Path, data_dir: Path) -> None:
    """Put a migrated, empty MLflow store into ``data_dir`` (saves ~20 s per data dir)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if not (data_dir / "mlflow.db").exists():
        shutil.copy(template, data_dir / "mlflow.db")


@contextlib.contextmanager
def running(server: RelServer) -> Iterator[RelServer]:
    """Start ``server`` and always stop it (and its children) afterwards."""
    server.start()
    try:
        yield server
    finally:
        server.stop()


def rows_of(batch: int, n: int) -> list[dict[str, float | int]]:
    """``n`` labelled rows that name their batch (feature1) and position (feature2)."""
    return [{"feature1": float(batch), "feature2": float(i), "target": i % 2} for i in range(n)]


def stored_batches(conn: sqlite3.Connection) -> dict[int, list[int]]:
    """Batch -> positions stored, decoded from the rows written by ``rows_of``."""
    out: dict[int, list[int]] = {}
    query = "SELECT feature_values FROM labelled_rows WHERE source = 'data'"
    for (blob,) in conn.execute(query):  # packed float64: feature1, feature2
        batch, position = struct.unpack("<2d", blob)
        out.setdefault(int(batch), []).append(int(position))
    return out
