"""Speed: what each part of the service costs, against its limit, measured in one run.

One live server (default settings but for the scheduler, which is off, and a training
window as large as the history, so that a retrain fits all of it) and one data
directory, growing from 10 thousand to 1 million rows of 20 features:

- predict: single-row requests per second and p50/p99 under concurrent load (wrk, or
  the asyncio client when wrk is missing), as ratios to the same server's ``/health``
  and to in-process ``predict_proba`` of the very model served; 10,000-row batches as
  rows per second against in-process ``predict_proba``; LogisticRegression,
  HistGradientBoosting and RandomForest, each served as the champion in turn (target:
  a tree champion's single-row rate at least half the linear champion's).
- ingest: ``POST /data`` (JSON and CSV, 10,000-row batches) against raw ``sqlite3``
  ``executemany`` of the same typed rows (packed float64 blocks) into the same table
  layout on the same disk, each batch followed by its floor (interleaved), wall and CPU.
- check at 10 thousand and 1 million rows; retrain (strategy ``all``: read, fit, gate,
  MLflow, registration, swap) at 10 thousand, 100 thousand and 1 million against the
  bare fit of the same model on the same arrays, and the read of the rows alone;
  predict p99 while a retrain runs; start-up to ``/ready``; resident memory.

Ratios are taken in the same run; figures are medians over repeats.

    uv run python benchmarks/speed.py              # full (~10 min)
    uv run python benchmarks/speed.py --quick      # up to 100 thousand rows, short loads
    uv run python benchmarks/speed.py --predict-only --no-write   # predict of each family (~4 min)
    uv run python benchmarks/speed.py --serving-only  # against bare Litestar and MLServer (~8 min)
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from _harness import (
    Http,
    Server,
    exit_on_sigterm,
    fmt,
    machine,
    median,
    pin_blas,
    table,
    warm_retrain,
    write_section,
)
from _load import LoadResult, closed_loop, open_loop, wrk_available

N_FEATURES = 20
BATCH = 10_000
CHECK_REPEATS = 15  # a check is tens of milliseconds: a median of 15 steadies it on a busy box
NAMES = [f"f{i + 1}" for i in range(N_FEATURES)]
_encode = msgspec.json.encode


@dataclass
class Options:
    """The run's knobs."""

    max_rows: int = 1_000_000
    seconds: float = 10.0
    repeats: int = 3
    connections: int = 4
    tool: str = "auto"
    models: tuple[str, ...] = ("logistic_regression", "hist_gradient_boosting", "random_forest")
    predict_only: bool = False
    data_only: bool = False  # ingest, check, retrain, memory: no predict loads


@dataclass
class Results:
    """Every figure, filled in phase by phase."""

    tool: str = ""
    startup_health: float = float("nan")
    startup_ready: float = float("nan")
    rss_idle: float = float("nan")
    rss_ready: float = float("nan")
    rss_loaded: float = float("nan")
    first_retrain: float = float("nan")
    predict: dict[str, dict[str, Any]] = field(default_factory=dict)
    ingest: dict[str, float] = field(default_factory=dict)
    checks: dict[int, float] = field(default_factory=dict)
    check_cpu: dict[int, float] = field(default_factory=dict)  # server CPU seconds a check
    retrains: dict[int, dict[str, float]] = field(default_factory=dict)
    during: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# ---- data ------------------------------------------------------------------------------------


class Data:
    """A deterministic 20-feature linear concept, in 10,000-row batches (rounded as JSON sends them)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.w = np.random.default_rng(seed).normal(size=N_FEATURES)

    def batch(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``k``: features and 0/1 labels."""
        rng = np.random.default_rng(self.seed * 1_000_003 + k + 1)
        x = np.round(rng.normal(size=(BATCH, N_FEATURES)), 6)
        y = ((x @ self.w + 0.5 * rng.normal(size=BATCH)) > 0).astype(np.int64)
        return x, y

    @staticmethod
    def rows(x: np.ndarray) -> list[dict[str, float]]:
        """Feature dicts."""
        return [dict(zip(NAMES, r, strict=True)) for r in x.tolist()]

    def json_body(self, x: np.ndarray, y: np.ndarray) -> bytes:
        """A ``POST /data`` JSON body."""
        rows = [{**r, "target": int(t)} for r, t in zip(self.rows(x), y.tolist(), strict=True)]
        return _encode({"rows": rows})

    @staticmethod
    def csv_body(x: np.ndarray, y: np.ndarray) -> bytes:
        """A ``POST /data`` CSV body."""
        out = io.StringIO()
        out.write(",".join([*NAMES, "target"]) + "\n")
        np.savetxt(out, np.column_stack([x, y]), fmt=["%.6f"] * N_FEATURES + ["%d"], delimiter=",")
        return out.getvalue().encode()

    def frame(self, batches: range) -> tuple[Any, np.ndarray]:
        """The rows of ``batches`` as a DataFrame and labels (for in-process baselines)."""
        import pandas as pd

        xs, ys = zip(*(self.batch(k) for k in batches), strict=True)
        return pd.DataFrame(np.vstack(xs), columns=NAMES), np.concatenate(ys)


# ---- helpers ---------------------------------------------------------------------------------


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` calls."""
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def post_raw(http: Http, path: str, body: bytes, content_type: str = "application/json") -> Any:
    """POST a prepared body; raise on an error status."""
    status, data = http.request("POST", path, body, content_type)
    if status >= 400:
        raise RuntimeError(f"POST {path}: {status} {data[:300]!r}")
    return msgspec.json.decode(data)


def load(
    server: Server, opts: Options, method: str, path: str, bodies: Sequence[bytes | None]
) -> LoadResult:
    """The median run (by requests per second) of ``opts.repeats`` closed-loop loads."""
    headers = {"Authorization": f"Bearer {server.api_key}"}
    if method == "POST":
        headers["Content-Type"] = "application/json"
    runs = [
        closed_loop(
            server.port, method, path, bodies, headers, opts.connections, opts.seconds, opts.tool
        )
        for _ in range(opts.repeats)
    ]
    for r in runs:
        if r.errors:
            raise RuntimeError(f"{path}: {r.errors} error answers under load")
    return sorted(runs, key=lambda r: r.rps)[len(runs) // 2]


def champion_pipeline(server: Server, http: Http) -> Any:
    """The served model itself, from the server's verified local copy."""
    version = http.get("/model-status")["model_version"]
    return pickle.loads(
        (server.data_dir / "models" / f"{version}.pkl").read_bytes()
    )  # the file the server wrote


def in_process_single(pipeline: Any, frame: Any, seconds: float) -> float:
    """Rows per second of one-row ``predict_proba`` calls on a one-row DataFrame."""
    singles = [frame.iloc[[i]] for i in range(256)]
    n, deadline = 0, time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        pipeline.predict_proba(singles[n % 256])
        n += 1
    return n / (time.perf_counter() - started)


def compiled_single(
    pipeline: Any, onnx: bytes | None, rows: Sequence[dict[str, float]], seconds: float
) -> float:
    """Rows per second of the service's own serving path (``CompiledModel``, through the
    version's ONNX bytes when the server serves them), one row a call."""
    from continual.adapters.models import CompiledModel
    from continual.core.schema import infer_schema

    schema = infer_schema({**rows[0], "target": 0}, "target", "bench")
    model = CompiledModel.of(pipeline, schema, onnx)
    n, deadline = 0, time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        model.predict_rows([rows[n % len(rows)]])
        n += 1
    return n / (time.perf_counter() - started)


# ---- phases ----------------------------------------------------------------------------------


def fill(http: Http, data: Data, have: int, want: int) -> int:
    """Ingest CSV batches until the history holds ``want`` rows."""
    k = have // BATCH
    while k * BATCH < want:
        post_raw(http, "/data", data.csv_body(*data.batch(k)), "text/csv")
        k += 1
    return k * BATCH


def predict_phase(
    server: Server, http: Http, data: Data, opts: Options, model: str, res: Results
) -> None:
    """Health, single-row and batch predict, against in-process ``predict_proba``."""
    x, _ = data.batch(10_000)  # rows the model never saw
    rows = data.rows(x)
    singles = [_encode({"features": r}) for r in rows[:256]]
    health = load(server, opts, "GET", "/health", [None])
    features = load(server, opts, "GET", "/features", [None])  # auth + a trivial handler
    single = load(server, opts, "POST", "/predict", singles)
    pipeline = champion_pipeline(server, http)
    frame, _ = data.frame(range(10_000, 10_001))
    inproc_single = in_process_single(pipeline, frame, min(opts.seconds, 5))
    status = http.get("/model-status")
    local_onnx = server.data_dir / "models" / f"{status['model_version']}.onnx"
    onnx = local_onnx.read_bytes() if status["runtime"] == "onnx" else None
    compiled = compiled_single(pipeline, onnx, rows[:256], min(opts.seconds, 5))
    batch_body = _encode({"rows": rows})
    batch = timed(lambda: post_raw(http, "/predict", batch_body), max(3, opts.repeats))
    inproc_batch = timed(lambda: pipeline.predict_proba(frame), max(5, opts.repeats))
    # the floor of any JSON API on these rows: decoding the request alone, in-process
    decode_only = timed(lambda: msgspec.json.decode(batch_body), max(5, opts.repeats))
    res.predict[model] = {
        "health": health,
        "features": features,
        "single": single,
        "inproc_single": inproc_single,
        "compiled_single": compiled,
        "runtime": status["runtime"],
        "batch_rps": BATCH / median(batch),
        "inproc_batch_rps": BATCH / median(inproc_batch),
        "decode_rps": BATCH / median(decode_only),
    }
    print(
        f"  predict {model}: health {health.rps:.0f}/s, single {single.rps:.0f}/s "
        f"(p50 {single.p50_ms:.2f} ms, p99 {single.p99_ms:.2f} ms), in-process {inproc_single:.0f}/s; "
        f"batch {BATCH / median(batch):,.0f} rows/s vs {BATCH / median(inproc_batch):,.0f}",
        flush=True,
    )


def ingest_phase(
    http: Http,
    server: Server,
    data: Data,
    opts: Options,
    start_batch: int,
    workdir: Path,
    res: Results,
) -> int:
    """JSON and CSV batches through the API, each followed by raw executemany of the same
    rows (interleaved: on a busy box a floor measured minutes apart is of another load).
    Returns the next batch index."""
    k = start_batch
    json_times: list[float] = []
    csv_times: list[float] = []
    raw_times: list[float] = []
    json_cpu: list[float] = []
    csv_cpu: list[float] = []
    raw_cpu: list[float] = []
    raw = RawTable(workdir / "raw.db")
    try:
        for _ in range(max(5, opts.repeats)):
            for times, cpus, make, ctype in (
                (json_times, json_cpu, data.json_body, "application/json"),
                (csv_times, csv_cpu, data.csv_body, "text/csv"),
            ):
                x, y = data.batch(k)
                body = make(x, y)
                c = server_cpu(server)
                t = time.perf_counter()
                post_raw(http, "/data", body, ctype)
                times.append(time.perf_counter() - t)
                cpus.append(server_cpu(server) - c)
                wall, cpu = raw.insert(x, y)
                raw_times.append(wall)
                raw_cpu.append(cpu)
                k += 1
    finally:
        raw.close()
    res.ingest = {
        "json": BATCH / median(json_times),
        "csv": BATCH / median(csv_times),
        "raw": BATCH / median(raw_times),
        "json_cpu": median(json_cpu),
        "csv_cpu": median(csv_cpu),
        "raw_cpu": median(raw_cpu),
    }
    print(
        f"  ingest rows/s: JSON {res.ingest['json']:,.0f}, CSV {res.ingest['csv']:,.0f}, raw sqlite3 {res.ingest['raw']:,.0f}; "
        f"CPU s a batch: server JSON {res.ingest['json_cpu']:.3f}, CSV {res.ingest['csv_cpu']:.3f}, raw {res.ingest['raw_cpu']:.3f}",
        flush=True,
    )
    return k


def server_cpu(server: Server) -> float:
    """CPU seconds the server process (all its threads, not its worker) has used."""
    assert server.proc is not None
    fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RawTable:
    """Raw ``executemany`` into the service's row table layout (same columns and indexes,
    WAL, synchronous=NORMAL), one transaction per batch: the ingest floor."""

    def __init__(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self.conn = sqlite3.connect(path, isolation_level=None)
        conn = self.conn
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE labelled_rows (id INTEGER PRIMARY KEY, arrived_at FLOAT NOT NULL, "
            "source VARCHAR(16) NOT NULL, label VARCHAR NOT NULL, "
            "scored_version VARCHAR(32), correct BOOLEAN, prediction_id VARCHAR(64), batch_key VARCHAR(128), "
            "feature_values BLOB NOT NULL)"
        )
        conn.execute("CREATE INDEX ix_rows_scored_version_id ON labelled_rows (scored_version, id)")
        conn.execute("CREATE INDEX ix_labelled_rows_label ON labelled_rows (label)")
        conn.execute("CREATE INDEX ix_labelled_rows_batch_key ON labelled_rows (batch_key)")

    def insert(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Wall and CPU seconds of one batch's transaction (its parameters made before)."""
        flat = np.ascontiguousarray(x, dtype="<f8").tobytes()
        width = 8 * x.shape[1]
        params = [
            (time.time(), "data", flat[i * width : (i + 1) * width], str(int(t)), "1", True, None)
            for i, t in enumerate(y.tolist())
        ]
        c = time.process_time()
        t = time.perf_counter()
        self.conn.execute("BEGIN")
        self.conn.executemany(
            "INSERT INTO labelled_rows (arrived_at, source, feature_values, label, scored_version, correct, batch_key) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            params,
        )
        self.conn.execute("COMMIT")
        return time.perf_counter() - t, time.process_time() - c

    def close(self) -> None:
        self.conn.close()


def check_time(server: Server, http: Http, repeats: int) -> tuple[float, float]:
    """Median seconds of ``POST /check`` (it never retrains here: cooldown is long), and
    the server's mean CPU seconds a check (what it costs, whatever else loads the box)."""
    cpu = server_cpu(server)
    times = timed(lambda: http.post("/check"), repeats)
    return median(times), (server_cpu(server) - cpu) / repeats


def read_rows(db_url: str, rows: int, repeats: int = 3) -> tuple[float, float, float]:
    """What the worker's start-up read does (and a retrain whose worker holds no copy of
    the pool): read the newest ``rows`` rows as arrays from the database. Median wall and
    CPU seconds, and the floor: raw ``sqlite3`` fetching the same rows' id, block and
    label as Python tuples, interleaved with it.

    The engine is opened before the clock starts: the training worker keeps its engine
    for its lifetime, so a retrain pays the read, not the connection."""
    from continual.adapters.db import open_database
    from continual.services.pool import PoolCache

    db = open_database(db_url, migrate_now=False)
    schema = db.meta.get_schema()
    assert schema is not None
    raw = sqlite3.connect(db_url[len("sqlite:///") :])
    sql = "SELECT id, feature_values, label FROM labelled_rows ORDER BY id DESC LIMIT ?"

    cpu: list[float] = []
    walls: list[float] = []
    floors: list[float] = []

    def fetch() -> int:
        cursor, n = raw.execute(sql, (rows,)), 0
        while got := cursor.fetchmany(8192):
            n += len(got)
        return n

    try:
        for _ in range(repeats):
            c, t = time.process_time(), time.perf_counter()
            got = PoolCache(db.rows).recent_rows(schema, rows)  # a fresh copy: a cold read
            walls.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            assert len(got) == rows
            del got
            t = time.perf_counter()
            assert fetch() == rows
            floors.append(time.perf_counter() - t)
        return median(walls), median(cpu), median(floors)
    finally:
        raw.close()
        db.close()


def retrain_phase(
    http: Http, data: Data, have: int, repeats: int, res: Results, db_url: str
) -> int:
    """Full retrains through the API against the bare fit of the same rows in-process;
    before each retrain after the first, one batch of new rows arrives (as between two
    retrains of a live service), so the worker's read is of a grown pool. Returns the
    rows held after."""
    from continual.adapters.models import build_pipeline
    from continual.core.schema import infer_schema

    walls: list[float] = []
    fits: list[float] = []
    reads: list[float] = []
    for i in range(repeats):
        if i:
            have = fill(http, data, have, have + BATCH)
        t = time.perf_counter()
        got = http.post("/retrain", {"reason": "benchmark"})
        walls.append(time.perf_counter() - t)
        version = got["version"]
        metrics = next(
            v for v in http.get("/models")["versions"] if str(v["version"]) == str(version)
        )["metrics"]
        fits.append(float(metrics.get("fit_seconds", float("nan"))))
        reads.append(float(metrics.get("read_seconds", float("nan"))))
    cold, cold_cpu, floor = read_rows(db_url, have)
    frame, y = data.frame(range(have // BATCH))
    holdout = max(10, min(int(have * 0.2), 250))  # what the service holds out (eval window / 2)
    frame, y = frame.iloc[:-holdout], y[:-holdout]
    schema = infer_schema({**dict.fromkeys(NAMES, 0.0), "target": 0}, "target", "bench")
    bare = timed(lambda: build_pipeline("logistic_regression", schema, 42).fit(frame, y), repeats)
    # the first retrain of a phase follows the fill to this size (at a million rows, 850,000
    # new rows: a bulk import, not the steady state), so it is left out when others ran
    res.retrains[have] = {
        "wall": median(walls[1:] or walls),
        "search_fits": median(fits[1:] or fits),
        "bare": median(bare),
        # the worker's read in the retrains that followed new rows (the first may be the
        # first read of this pool, or follow many more rows: it is the cold figure's case)
        "read": median(reads[1:] or reads),
        "read_cold": cold,
        "read_cold_cpu": cold_cpu,
        "read_floor": floor,
    }
    print(
        f"  retrain at {have:,} rows: {median(walls):.2f} s (fits {median(fits):.2f} s, "
        f"reads {', '.join(f'{r:.2f}' for r in reads)} s, cold read {cold:.2f} s, "
        f"raw fetch {floor:.2f} s), "
        f"bare fit {median(bare):.2f} s",
        flush=True,
    )
    return have


def _timed_retrain(server: Server, took: list[float]) -> None:
    http = server.http(timeout=1800)
    t = time.perf_counter()
    http.post("/retrain", {"reason": "benchmark: load during retrain"})
    took.append(time.perf_counter() - t)
    http.close()


def during_retrain(server: Server, data: Data, opts: Options, res: Results) -> None:
    """Predict p99 at a fixed rate while a retrain runs, against the same rate without."""
    x, _ = data.batch(10_001)
    bodies = [_encode({"features": r}) for r in data.rows(x)[:256]]
    headers = {"Authorization": f"Bearer {server.api_key}", "Content-Type": "application/json"}
    capacity = res.predict["logistic_regression"]["single"].rps
    rate = max(20.0, round(capacity * 0.25, -1))
    seconds = opts.seconds
    quiet = [
        open_loop(server.port, "/predict", bodies, headers, rate, seconds)
        for _ in range(opts.repeats)
    ]
    busy: list[LoadResult] = []
    covered = True
    for _ in range(1):  # each is a retrain of the whole history: one is enough to load
        took: list[float] = []
        worker = threading.Thread(target=_timed_retrain, args=(server, took))
        started = time.perf_counter()
        worker.start()
        time.sleep(1.0)  # the retrain is reading rows by now
        busy.append(open_loop(server.port, "/predict", bodies, headers, rate, seconds))
        elapsed = time.perf_counter() - started
        worker.join()
        covered = covered and bool(took) and took[0] >= elapsed
    res.during = {
        "rate": rate,
        "quiet_p99": median(r.p99_ms for r in quiet),
        "busy_p99": median(r.p99_ms for r in busy),
        "quiet_p50": median(r.p50_ms for r in quiet),
        "busy_p50": median(r.p50_ms for r in busy),
        "covered": covered,
    }
    print(
        f"  p99 at {rate:.0f}/s: {res.during['quiet_p99']:.2f} ms quiet, {res.during['busy_p99']:.2f} ms during a retrain",
        flush=True,
    )


def other_models(server: Server, data: Data, opts: Options, res: Results) -> None:
    """Predict with each further family as the champion (restarted with it, a 10,000-row window)."""
    for model in opts.models[1:]:
        server.stop_process()
        server.env["CONTINUAL_MODEL"] = model
        server.env["CONTINUAL_TRAIN_WINDOW"] = "10000"
        server.start_process()
        server.wait_for("/ready", 120)
        http = server.http(timeout=1800)
        try:
            got = http.post("/retrain", {"reason": f"benchmark: {model}"})
            if not got["promoted"]:  # the gate may keep the linear champion: serve it anyway
                http.post(f"/models/{got['version']}/promote", {"reason": "benchmark"})
            predict_phase(server, http, data, opts, model, res)
        except Exception as exc:  # keep every figure measured so far
            res.notes.append(f"{model}: not measured ({type(exc).__name__}: {exc})"[:300])
        http.close()


def run_predict_only(opts: Options) -> Results:
    """Only the predict phases, of every family, on 10,000 rows of history."""
    res = Results(
        tool="wrk" if opts.tool == "wrk" or (opts.tool == "auto" and wrk_available()) else "asyncio"
    )
    data = Data()
    server = Server({"CONTINUAL_COOLDOWN_SECONDS": "86400", "CONTINUAL_MAX_BATCH_ROWS": str(BATCH)})
    try:
        server.start()
        http = server.http(timeout=1800)
        fill(http, data, 0, 10_000)
        res.first_retrain = warm_retrain(http)
        predict_phase(server, http, data, opts, opts.models[0], res)
        http.close()
        if not opts.data_only:
            other_models(server, data, opts, res)
    finally:
        server.stop()
    return res


def run(opts: Options) -> Results:
    """Every phase, on one data directory."""
    if opts.predict_only:
        return run_predict_only(opts)
    res = Results(
        tool="wrk" if opts.tool == "wrk" or (opts.tool == "auto" and wrk_available()) else "asyncio"
    )
    data = Data()
    sizes = [n for n in (10_000, 100_000, 1_000_000) if n <= opts.max_rows]
    env = {
        "CONTINUAL_TRAIN_WINDOW": str(max(sizes)),
        "CONTINUAL_HISTORY_ROWS": str(max(sizes)),
        "CONTINUAL_TRAIN_STRATEGY": "all",  # a retrain fits the whole history
        # the retrain is compared with the bare fit of the same model: a pool of one
        "CONTINUAL_MODEL": "logistic_regression",
        "CONTINUAL_COOLDOWN_SECONDS": "86400",  # a check only measures; retrains are explicit
        "CONTINUAL_MAX_BATCH_ROWS": str(BATCH),
    }
    server = Server(env)
    try:
        server.start()
        res.startup_health = server.health_after
        res.rss_idle = server.rss_mib()
        http = server.http(timeout=1800)  # a million-row retrain on a busy box is slow
        have = fill(http, data, 0, 10_000)
        res.first_retrain = warm_retrain(http)
        print(f"  first retrain in a fresh data dir: {res.first_retrain:.1f} s", flush=True)
        # one batch scored by the champion, so that this check reads its scored window as
        # the one at a million rows does (with none scored it rescored the newest rows:
        # other work, not the same check on a smaller history)
        have = fill(http, data, have, have + BATCH)
        res.checks[have], res.check_cpu[have] = check_time(server, http, CHECK_REPEATS)
        db_url = f"sqlite:///{server.data_dir / 'continual.db'}"
        have = retrain_phase(http, data, have, max(3, opts.repeats), res, db_url)
        if not opts.data_only:
            predict_phase(server, http, data, opts, "logistic_regression", res)
        # ingest measurements add rows; then top up to the next size
        k = ingest_phase(http, server, data, opts, have // BATCH, server.data_dir.parent, res)
        have = k * BATCH
        for size in sizes[1:]:
            if have > size:
                res.notes.append(f"history was {have:,} rows when measured at {size:,}")
            have = fill(http, data, have, size)
            if size == max(sizes):
                res.checks[have], res.check_cpu[have] = check_time(server, http, CHECK_REPEATS)
            have = retrain_phase(
                http, data, have, 3 if size >= 1_000_000 else max(2, opts.repeats), res, db_url
            )
        print(
            f"  check: {', '.join(f'{n:,} rows {s * 1000:.1f} ms' for n, s in res.checks.items())}",
            flush=True,
        )
        if not opts.data_only:
            during_retrain(server, data, opts, res)
        res.rss_loaded = server.rss_mib()
        http.close()
        server.stop_process()
        server.start_process()
        res.startup_ready = server.wait_for("/ready", 120)
        time.sleep(2)
        res.rss_ready = server.rss_mib()
        print(f"  start-up to /ready with {have:,} rows: {res.startup_ready:.2f} s", flush=True)
        if not opts.data_only:
            other_models(server, data, opts, res)
    finally:
        server.stop()
    return res


# ---- the report ------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def targets(res: Results) -> list[list[str]]:
    """Each data-layer target measured in this run: its figure, its limit, met or missed."""
    out: list[list[str]] = []
    for name, key in (
        ("ingest JSON ÷ raw executemany", "json"),
        ("ingest CSV ÷ raw executemany", "csv"),
    ):
        if res.ingest:
            ratio = res.ingest[key] / res.ingest["raw"]
            out.append([name, f"{ratio:.2f}", ">= 0.5", _verdict(ratio >= 0.5)])
    if len(res.checks) > 1 and max(res.checks) >= 1_000_000:
        ratio = res.checks[max(res.checks)] / res.checks[min(res.checks)]
        out.append(
            [
                "check at 1M ÷ check at the smallest",
                f"{ratio:.2f}",
                "<= 1.2",
                _verdict(ratio <= 1.2),
            ]
        )
    top = max(res.retrains, default=0)
    if top >= 1_000_000:
        r = res.retrains[top]
        ratio = r["wall"] / r["bare"]
        out.append(["retrain of 1M ÷ bare fit", f"{ratio:.2f}", "<= 2", _verdict(ratio <= 2)])
        out.append(
            [
                "reading 1M rows in a retrain after 10,000 new rows, s",
                f"{r['read']:.2f}",
                "<= 1",
                _verdict(r["read"] <= 1),
            ]
        )
        out.append(
            [
                "reading 1M rows cold (the worker's start-up read), s",
                f"{r['read_cold']:.2f}",
                "<= 1",
                _verdict(r["read_cold"] <= 1),
            ]
        )
    if top >= 1_000_000 and res.rss_loaded == res.rss_loaded:
        ratio = res.rss_loaded / res.rss_idle
        out.append(
            [
                "RSS after 1M rows ÷ idle (fresh: no model yet)",
                f"{ratio:.2f}",
                "<= 1.5 + kept arrays",
                _verdict(ratio <= 1.5),
            ]
        )
        ratio = res.rss_loaded / res.rss_ready
        out.append(
            [
                "RSS after 1M rows ÷ idle serving the champion (after restart)",
                f"{ratio:.2f}",
                "<= 1.5 + kept arrays",
                _verdict(ratio <= 1.5),
            ]
        )
    return out


def report(res: Results, opts: Options, command: str, seconds: float) -> str:
    """The section written into docs/benchmarks.md."""
    parts = [
        f"Command: `{command}` ({seconds / 60:.0f} min; {machine()}). Load generator: **{res.tool}** "
        f"({opts.connections} keep-alive connections, {opts.seconds:.0f} s per load, median of {opts.repeats}), "
        "127.0.0.1. Server: `continual serve` with its defaults (dashboard on, BLAS pinned to one thread) "
        "but for the scheduler (off) and a training window as large as the history; the in-process "
        "baselines are pinned to one BLAS thread too. Steady state: the first retrain in a fresh data "
        f"directory (MLflow creating its tables, {res.first_retrain:.1f} s here) is excluded.",
    ]
    rows = []
    linear = res.predict.get("logistic_regression")
    for model, p in res.predict.items():
        h: LoadResult = p["health"]
        f: LoadResult = p["features"]
        s: LoadResult = p["single"]
        rows.append(
            [
                model,
                fmt(h.rps, 0),
                fmt(f.rps, 0),
                fmt(s.rps, 0),
                f"{s.p50_ms:.2f} / {s.p99_ms:.2f}",
                f"{s.rps / h.rps:.2f}",
                _verdict(s.rps / h.rps >= 0.5),
                fmt(p["inproc_single"], 0),
                f"{s.rps / p['inproc_single']:.2f}",
                fmt(p["compiled_single"], 0),
                p.get("runtime", ""),
                "" if linear is None else f"{s.rps / linear['single'].rps:.2f}",
                ""
                if linear is None or model == "logistic_regression"
                else _verdict(s.rps / linear["single"].rps >= 0.5),
            ]
        )
    parts += [
        "**Predict, one row per request** (targets: at least half the server's own `/health` rate; "
        "a tree champion at least half the linear champion's rate, same run):",
        table(
            [
                "model",
                "/health req/s",
                "GET /features req/s (auth floor)",
                "predict req/s",
                "p50 / p99 ms",
                "÷ /health",
                "target",
                "in-process predict_proba rows/s (1-row calls)",
                "÷ in-process",
                "in-process compiled model rows/s (the server's path)",
                "runtime",
                "÷ linear champion",
                "target",
            ],
            rows,
        ),
    ]
    rows = [
        [
            model,
            fmt(p["batch_rps"], 0),
            fmt(p["inproc_batch_rps"], 0),
            f"{p['batch_rps'] / p['inproc_batch_rps']:.2f}",
            _verdict(p["batch_rps"] / p["inproc_batch_rps"] >= 0.5),
            fmt(p["decode_rps"], 0),
        ]
        for model, p in res.predict.items()
    ]
    parts += [
        f"**Predict, {BATCH:,}-row batches** (target: at least half of in-process `predict_proba` on the same rows):",
        table(
            [
                "model",
                "server rows/s",
                "in-process rows/s",
                "ratio",
                "target",
                "JSON decode of the request alone, in-process rows/s",
            ],
            rows,
        ),
    ]
    if not res.predict:  # --data-only: no predict loads ran
        del parts[1:5]
    if res.ingest:
        i = res.ingest
        parts += [
            f"**Ingest** `POST /data`, {BATCH:,}-row batches of {N_FEATURES} features into SQLite, each row scored by the champion on arrival "
            "(target: at least half of raw `sqlite3` `executemany` of the same typed rows, packed float64 blocks, same table and indexes, same disk):",
            table(
                [
                    "format",
                    "rows/s",
                    "raw executemany rows/s",
                    "ratio",
                    "target",
                    "server CPU s a batch",
                    "raw CPU s a batch",
                    "CPU ratio (raw ÷ server)",
                ],
                [
                    [
                        fmtn,
                        fmt(i[key], 0),
                        fmt(i["raw"], 0),
                        f"{i[key] / i['raw']:.2f}",
                        _verdict(i[key] / i["raw"] >= 0.5),
                        f"{i[key + '_cpu']:.3f}",
                        f"{i['raw_cpu']:.3f}",
                        f"{i['raw_cpu'] / i[key + '_cpu']:.2f}",
                    ]
                    for fmtn, key in (("JSON", "json"), ("CSV", "csv"))
                ],
            ),
        ]
    if res.checks:
        base = res.checks[min(res.checks)]
        worst = max(res.checks.values()) / base
        parts += [
            f"**Check** (`POST /check`, median of {CHECK_REPEATS}, each reading the champion's scored window; "
            "target: at 1 million rows at most 1.2 times the check at 10 thousand, here the smallest history, "
            "10 thousand rows and one batch the champion scored):",
            table(
                [
                    "rows of history",
                    "one check, ms",
                    "÷ at the smallest",
                    "target",
                    "server CPU ms a check",
                    "CPU ÷ at the smallest",
                ],
                [
                    [
                        f"{n:,}",
                        f"{s * 1000:.1f}",
                        f"{s / base:.2f}",
                        _verdict(worst <= 1.2) if n == max(res.checks) else "",
                        f"{res.check_cpu.get(n, float('nan')) * 1000:.1f}",
                        f"{res.check_cpu.get(n, float('nan')) / res.check_cpu.get(min(res.checks), float('nan')):.2f}",
                    ]
                    for n, s in res.checks.items()
                ],
            ),
        ]
    if res.retrains:
        top = max(res.retrains)
        rows = []
        for n, r in res.retrains.items():
            ratio = r["wall"] / r["bare"]
            rows.append(
                [
                    f"{n:,}",
                    f"{r['wall']:.2f}",
                    f"{r['search_fits']:.2f}",
                    f"{r['bare']:.2f}",
                    f"{ratio:.2f}",
                    f"{r['wall'] - r['search_fits']:.2f}",
                    f"{r['read']:.2f}",
                    f"{r['read_cold']:.2f} ({r['read_cold_cpu']:.2f} CPU)",
                    f"{r['read_floor']:.2f}",
                    _verdict(ratio <= 2) if n == top and top >= 1_000_000 else "",
                    _verdict(r["read"] <= 1) if n == top and top >= 1_000_000 else "",
                ]
            )
        parts += [
            "**Retrain** (`POST /retrain`: read rows, fit, gate, MLflow run + model + registration, swap; "
            "LogisticRegression, strategy `all`; targets at 1 million rows: at most 2 times the bare fit of the same model "
            "on the same arrays, and reading the rows at most 1 s). Strategy `all` fits once, on all of "
            "the history (no window search); *fit* is that fit's time as the service records it (its "
            "pandas frame included), *rest* is everything else, the read of the rows among it. "
            "Before each retrain but the first of a size, one batch of 10,000 new rows arrives, as "
            "between two retrains of a live service; the figures are the median of those retrains "
            "(the first follows the fill to that size, at a million rows 850,000 new rows, and its "
            "read is the cold read's case). The training worker keeps the pool's rows between "
            "retrains (docs/architecture.md), so its read is of the new rows; the *cold read* is "
            "what it reads at start-up, beside raw `sqlite3` fetching the same rows as tuples:",
            table(
                [
                    "rows",
                    "full retrain s",
                    "fit s",
                    "bare fit s",
                    "÷ bare fit",
                    "rest s",
                    "of which the worker's read s (after 10,000 new rows)",
                    "cold read s (in-process)",
                    "raw sqlite3 fetch of the same rows s",
                    "target ÷ bare fit",
                    "target read",
                ],
                rows,
            ),
        ]
    if res.during:
        d = res.during
        ratio = d["busy_p99"] / d["quiet_p99"]
        parts += [
            f"**Predict latency while a retrain runs** (open loop at a fixed {d['rate']:.0f} requests/s, about a "
            "quarter of capacity, latency from each request's scheduled time; the retrain is of the whole history; "
            "target: p99 under 1.5 times p99 without one):",
            table(
                ["p50 without / during, ms", "p99 without / during, ms", "ratio", "target"],
                [
                    [
                        f"{d['quiet_p50']:.2f} / {d['busy_p50']:.2f}",
                        f"{d['quiet_p99']:.2f} / {d['busy_p99']:.2f}",
                        f"{ratio:.2f}",
                        _verdict(ratio < 1.5),
                    ]
                ],
            ),
        ]
        if not d["covered"]:
            parts.append("(the retrain ended before the load did: part of the load ran without it)")
    if opts.predict_only:
        parts += [f"Note: {n}" for n in res.notes]
        return "\n\n".join(parts)
    memory_ratio = res.rss_loaded / res.rss_idle
    parts += [
        "**Start-up and memory** (target: the server's RSS after the history is at most 1.5 times "
        "its idle figure plus the arrays it keeps on purpose; it keeps none of the rows: the "
        "training window is read by the worker process, and the server holds only the champion's "
        "parameters, its drift reference of at most 500 values a feature, the category codes and "
        "the bounded prediction log, well under 1 MiB here):",
        table(
            [
                "`continual serve` to /health (fresh dir)",
                "to /ready (with champion and history)",
                "RSS idle (fresh)",
                "RSS after the history was ingested and trained on",
                "÷ idle",
                "target",
                "RSS idle after restart",
            ],
            [
                [
                    f"{res.startup_health:.2f} s",
                    f"{res.startup_ready:.2f} s",
                    f"{res.rss_idle:.0f} MiB",
                    f"{res.rss_loaded:.0f} MiB",
                    f"{memory_ratio:.2f}",
                    _verdict(memory_ratio <= 1.5)
                    if max(res.checks, default=0) >= 1_000_000
                    else "",
                    f"{res.rss_ready:.0f} MiB",
                ]
            ],
        ),
    ]
    summary = targets(res)
    if summary:
        parts += [
            "**Targets** (this run):",
            table(["target", "measured", "limit", "verdict"], summary),
        ]
    parts += [f"Note: {n}" for n in res.notes]
    return "\n\n".join(parts)


def parse(argv: Sequence[str] | None = None) -> tuple[Options, argparse.Namespace]:
    """Command-line options."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="up to 100 thousand rows, 3 s loads, 2 repeats, LogisticRegression only",
    )
    p.add_argument(
        "--predict-only",
        action="store_true",
        help="only the predict phases, of every family, on 10 thousand rows",
    )
    p.add_argument(
        "--data-only",
        action="store_true",
        help="only ingest, check, retrain, start-up and memory (no predict loads)",
    )
    p.add_argument("--max-rows", type=int, default=None)
    p.add_argument("--seconds", type=float, default=None, help="duration of each load")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--tool", choices=("auto", "wrk", "asyncio"), default="auto")
    p.add_argument(
        "--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone"
    )
    p.add_argument("--section", default=None, help="the docs/benchmarks.md section to write")
    a = p.parse_args(argv)
    opts = Options(connections=a.connections, tool=a.tool)
    if a.quick:
        opts = Options(
            max_rows=100_000,
            seconds=3,
            repeats=2,
            connections=a.connections,
            tool=a.tool,
            models=("logistic_regression",),
        )
    opts.predict_only = a.predict_only
    opts.data_only = a.data_only
    if a.max_rows is not None:
        opts.max_rows = a.max_rows
    if a.seconds is not None:
        opts.seconds = a.seconds
    if a.repeats is not None:
        opts.repeats = a.repeats
    if a.section is None:
        a.section = (
            "speed-quick"
            if a.quick
            else "speed-predict"
            if a.predict_only
            else "speed-data"
            if a.data_only
            else "speed"
        )
    return opts, a


def main(argv: Sequence[str] | None = None) -> str:
    """Run, print, write the section; return it."""
    given = list(sys.argv[1:] if argv is None else argv)
    if "--serving-only" in given:  # the serving floors (bare Litestar, MLServer): serving.py
        import serving

        return serving.main([a for a in given if a != "--serving-only"])
    opts, args = parse(argv)
    exit_on_sigterm()
    pin_blas()
    shown = [a for a in given if a not in ("--no-write",)]
    command = " ".join(["uv run python benchmarks/speed.py", *shown])
    started = time.perf_counter()
    res = run(opts)
    text = report(res, opts, command, time.perf_counter() - started)
    print()
    print(text)
    if not args.no_write:
        titles = {
            "speed-quick": "## Speed (quick set)",
            "speed-predict": "## Speed: predict, every family",
            "speed-data": "## Speed: the data layer (ingest, check, retrain, memory)",
        }
        title = titles.get(args.section, "## Speed")
        write_section(args.section, f"{title}\n\n{text}")
    return text


if __name__ == "__main__":
    main()
