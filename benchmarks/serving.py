"""Serving speed against its floors, in one run: a bare Litestar app and MLServer.

Every server gets the same load (wrk, or the asyncio client without it; keep-alive
connections, closed loop), rounds interleaved so that a noisy neighbour hits all alike:

- a bare Litestar app under uvicorn (started here): ``GET`` and ``POST`` of constant JSON,
  the framework's floor;
- continual: ``GET /health``, single-row ``POST /predict``, single-row V2 infer, and
  1,000-row batches (rows and columns) against the in-process floor of the same work
  (decode the request with msgspec, predict with the served model, encode the answer);
- MLServer (sklearn runtime) on the very model continual serves, installed by this
  script into its own venv under ``benchmarks/.cache`` (an optional peer: without a
  package index it is left out and said so): ``/v2/health/ready`` and V2 infer.

A LogisticRegression and a HistGradientBoosting champion, each in its own server, both
running at once: every round loads the bare app, then each family in turn, so the ratio
between the families compares loads seconds apart.

    uv run python benchmarks/serving.py                 # ~8 min
    uv run python benchmarks/serving.py --seconds 3 --rounds 1 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from _harness import (
    Server,
    fmt,
    free_port,
    machine,
    median,
    pin_blas,
    stop_pid,
    table,
    write_section,
)
from _load import LoadResult, closed_loop, wrk_available
from speed import NAMES, Data, champion_pipeline, post_raw

CACHE = Path(__file__).resolve().parent / ".cache"
BATCH_ROWS = 1_000
_encode = msgspec.json.encode

BARE_APP = textwrap.dedent(
    """
    import sys, uvicorn
    from litestar import Litestar, get, post

    @get("/get")
    async def g() -> dict[str, str]:
        return {"status": "ok"}

    @post("/post", status_code=200)
    async def p(data: dict[str, dict[str, float]]) -> dict[str, str]:
        return {"status": "ok"}

    app = Litestar([g, p], debug=False, logging_config=None)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                access_log=False)
    """
)


def _wait(port: int, path: str, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"127.0.0.1:{port}{path} did not answer 200 in {timeout:.0f} s")


def start_bare() -> tuple[subprocess.Popen[bytes], int]:
    """The bare Litestar app, in this venv, under uvicorn like continual."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", BARE_APP, str(port)])
    _wait(port, "/get")
    return proc, port


def mlserver_bin() -> Path | None:
    """MLServer in its own venv (made once); ``None`` when it cannot be installed."""
    venv = CACHE / "mlserver-venv"
    exe = venv / "bin" / "mlserver"
    if exe.exists():
        return exe
    try:
        subprocess.run(["uv", "venv", "-q", "-p", "3.11", str(venv)], check=True)
        subprocess.run(
            ["uv", "pip", "install", "-q", "mlserver", "mlserver-sklearn", "scikit-learn"],
            check=True,
            env={**os.environ, "VIRTUAL_ENV": str(venv)},
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"  MLServer left out: {exc}", flush=True)
        return None
    return exe if exe.exists() else None


def start_mlserver(exe: Path, estimator: Any, where: Path) -> tuple[subprocess.Popen[bytes], int]:
    """MLServer's sklearn runtime on ``estimator`` (a pipeline over the 20 numeric inputs)."""
    import joblib

    model_dir = where / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    joblib.dump(estimator, model_dir / "model.joblib")
    (model_dir / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "model",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib"},
            }
        )
    )
    port = free_port()
    (where / "settings.json").write_text(
        json.dumps(
            {
                "http_port": port,
                "grpc_port": free_port(),
                "metrics_port": free_port(),
                "parallel_workers": 0,
                "host": "127.0.0.1",
            }
        )
    )
    proc = subprocess.Popen([str(exe), "start", str(where)], stdout=subprocess.DEVNULL)
    _wait(port, "/v2/models/model/ready")
    return proc, port


def array_model(pipeline: Any, x: np.ndarray, y: np.ndarray) -> Any:
    """The champion's estimator (same class, same parameters) refitted on the same rows as
    a plain array: MLServer's sklearn runtime hands a model numpy arrays, and the served
    pipeline selects its columns by name, so behind a DataFrame wrapper MLServer would pay
    pandas on every request (83 req/s measured) instead of its own serving cost."""
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), clone(pipeline[-1])).fit(x, y)


def run_load(
    port: int, method: str, path: str, bodies: list[bytes | None], key: str, opts: Any
) -> LoadResult:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if method == "POST":
        headers["Content-Type"] = "application/json"
    got = closed_loop(
        port, method, path, bodies, headers, opts.connections, opts.seconds, opts.tool
    )
    if got.errors:
        raise RuntimeError(f"{path} on :{port}: {got.errors} error answers under load")
    return got


def batch_floor(model: Any, body: bytes, repeats: int) -> float:
    """Rows a second of the in-process work behind a columnar batch answer: msgspec decode,
    the same estimator on a numpy array (``array_model``), msgspec encode."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        cols = msgspec.json.decode(body)["columns"]
        x = np.column_stack([np.asarray(cols[n], dtype=np.float64) for n in NAMES])
        proba = model.predict_proba(x)
        ids = os.urandom(12 * len(x)).hex()
        _encode(
            {
                "prediction": proba.argmax(axis=1).tolist(),
                "confidence": proba.max(axis=1).tolist(),
                "prediction_id": [ids[i : i + 24] for i in range(0, len(ids), 24)],
                "probabilities": {str(j): proba[:, j].tolist() for j in range(proba.shape[1])},
            }
        )
        times.append(time.perf_counter() - t)
    return BATCH_ROWS / median(times)


def timed_post(http: Any, body: bytes, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        post_raw(http, "/predict", body)
        times.append(time.perf_counter() - t)
    return BATCH_ROWS / median(times)


class Family:
    """One champion family's live server (and MLServer on the very model), ready to load."""

    def __init__(self, model: str, opts: Any) -> None:
        self.model = model
        self.server = Server({"CONTINUAL_MODELS": model, "CONTINUAL_COOLDOWN_SECONDS": "86400"})
        self.ml_proc: subprocess.Popen[bytes] | None = None
        self.ml_port = 0
        data = Data()
        self.server.start()
        self.http = self.server.http(timeout=600)
        x, y = data.batch(0)
        post_raw(self.http, "/data", data.json_body(x, y))
        got = self.http.post("/retrain", {"reason": "serving benchmark"})
        if not got["promoted"]:
            self.http.post(f"/models/{got['version']}/promote", {"reason": "benchmark"})
        self.plain = array_model(champion_pipeline(self.server, self.http), x, y)
        self.xs, _ = data.batch(1)
        rows = Data.rows(self.xs)
        self.rows = rows
        self.singles: list[bytes | None] = [_encode({"features": r}) for r in rows[:256]]
        self.infers: list[bytes | None] = [
            _encode(
                {"inputs": [{"name": "input-0", "shape": [1, 20], "datatype": "FP64", "data": r}]}
            )
            for r in self.xs[:256].tolist()
        ]
        exe = mlserver_bin() if opts.mlserver else None
        if exe is not None:
            self.ml_proc, self.ml_port = start_mlserver(
                exe, self.plain, Path(self.server.data_dir).parent / "mlserver"
            )

    def plan(self) -> list[tuple[str, int, str, str, list[bytes | None], str]]:
        key, port = self.server.api_key, self.server.port
        plan = [
            ("health", port, "GET", "/health", [None], key),
            ("predict", port, "POST", "/predict", self.singles, key),
            ("infer", port, "POST", "/v2/models/continual/infer", self.infers, key),
        ]
        if self.ml_proc is not None:
            plan += [
                ("ml_ready", self.ml_port, "GET", "/v2/health/ready", [None], ""),
                ("ml_infer", self.ml_port, "POST", "/v2/models/model/infer", self.infers, ""),
            ]
        return plan

    def batches(self) -> dict[str, Any]:
        columns = _encode(
            {
                "columns": {n: self.xs[:BATCH_ROWS, j].tolist() for j, n in enumerate(NAMES)},
                "output": "columns",
            }
        )
        row_body = _encode({"rows": self.rows[:BATCH_ROWS]})
        return {
            "batch_columns": timed_post(self.http, columns, 15),
            "batch_rows": timed_post(self.http, row_body, 15),
            "batch_floor": batch_floor(self.plain, columns, 15),
            "runtime": self.http.get("/model-status")["runtime"],
        }

    def settle(self, limit: float = 60.0) -> None:
        """Wait until the server has written the predictions of the last load (its log's
        flush would otherwise run into the next load, on whichever server that is)."""
        deadline = time.perf_counter() + limit
        while time.perf_counter() < deadline:
            _status, text = self.http.request("GET", "/metrics")
            pending = [
                line
                for line in text.decode().splitlines()
                if line.startswith("continual_prediction_log_pending ")
            ]
            if not pending or float(pending[0].split()[1]) == 0:
                return
            time.sleep(0.2)

    def stop(self) -> None:
        if self.ml_proc is not None:
            stop_pid(self.ml_proc)
        self.http.close()
        self.server.stop()


def measure(families: list[str], opts: Any, bare_port: int) -> dict[str, dict[str, Any]]:
    """Every figure for every champion family. All servers run at once and every round
    loads each in turn, the bare app's floors first: a ratio between two families then
    compares loads seconds apart, not runs minutes apart on a box whose neighbours come
    and go. After each load the server writes its prediction log out before the next
    load starts (its flush, up to a second of CPU after a 10 s load, would land on the
    next figure, another server's as likely as its own). Each server gets one short load
    first (the first seconds of a fresh process
    run slower: allocator, caches)."""
    started: list[Family] = []
    try:
        for model in families:
            started.append(Family(model, opts))
        floors = [
            ("bare_get", bare_port, "GET", "/get", [None], ""),
            ("bare_post", bare_port, "POST", "/post", started[0].singles, ""),
        ]
        warm = type(opts)(**{**vars(opts), "seconds": min(2.0, opts.seconds)})
        for fam in started:
            for _name, port, method, path, bodies, k in fam.plan():
                run_load(port, method, path, bodies, k, warm)
            fam.settle()
        shared: dict[str, list[LoadResult]] = {}
        out: dict[str, dict[str, list[LoadResult]]] = {f.model: {} for f in started}
        for _ in range(opts.rounds):
            for name, port, method, path, bodies, k in floors:
                shared.setdefault(name, []).append(run_load(port, method, path, bodies, k, opts))
            for fam in started:
                for name, port, method, path, bodies, k in fam.plan():
                    got = run_load(port, method, path, bodies, k, opts)
                    out[fam.model].setdefault(name, []).append(got)
                    fam.settle()
        res: dict[str, dict[str, Any]] = {}
        for fam in started:
            figures: dict[str, Any] = {
                name: sorted(runs, key=lambda r: r.rps)[len(runs) // 2]
                for name, runs in {**shared, **out[fam.model]}.items()
            }
            figures.update(fam.batches())
            res[fam.model] = figures
        return res
    finally:
        for fam in started:
            fam.stop()


def report(res: dict[str, dict[str, Any]], opts: Any, seconds: float) -> str:
    lin = res["logistic_regression"]
    rows = []
    labels = {
        "bare_get": "bare Litestar `GET` constant JSON",
        "bare_post": "bare Litestar `POST` constant JSON",
        "ml_ready": "MLServer `GET /v2/health/ready`",
        "ml_infer": "MLServer V2 infer, one row",
        "health": "continual `GET /health`",
        "predict": "continual `POST /predict`, one row",
        "infer": "continual V2 infer, one row",
    }
    for name, label in labels.items():
        for family, fig in res.items():
            if name in fig and (
                family == "logistic_regression" or name in ("predict", "infer", "ml_infer")
            ):
                r: LoadResult = fig[name]
                rows.append(
                    [
                        f"{label} ({family}, {fig['runtime']})"
                        if name in ("predict", "infer", "ml_infer")
                        else label,
                        f"{r.rps:,.0f}",
                        fmt(r.p50_ms, 2),
                        fmt(r.p99_ms, 2),
                    ]
                )
    targets = []

    def ratio(fig: dict[str, Any], a: str, b: str) -> float | None:
        return fig[a].rps / fig[b].rps if a in fig and b in fig else None

    for family, fig in res.items():
        h = ratio(fig, "health", "bare_get")
        p = ratio(fig, "predict", "bare_post")
        m = ratio(fig, "predict", "ml_infer")
        v = ratio(fig, "infer", "ml_infer")
        b = fig["batch_columns"] / fig["batch_floor"]
        p99 = "ml_infer" in fig and fig["predict"].p99_ms <= fig["ml_infer"].p99_ms
        targets.append(
            [
                family,
                f"{fmt(h, 2)} (≥ 0.8)",
                f"{fmt(p, 2)} (≥ 0.7)",
                f"{fmt(m, 2)} / {fmt(v, 2)} (≥ 4)",
                "yes" if p99 else ("no" if "ml_infer" in fig else "n/a"),
                f"{fig['batch_columns']:,.0f} / {fig['batch_rows']:,.0f} / {fig['batch_floor']:,.0f} = {b:.2f} (≥ 0.5)",
            ]
        )
    tree = [f for f in res if f != "logistic_regression"]
    within = []
    for f in tree:
        for a, bb in (("predict", "bare_post"), ("predict", "ml_infer")):
            lr, tr = ratio(lin, a, bb), ratio(res[f], a, bb)
            if lr and tr:
                within.append(f"{f} {a}/{bb}: {tr / lr:.2f} of the linear ratio (target ≥ 0.8)")
    return "\n\n".join(
        [
            f"`uv run python benchmarks/serving.py` ({seconds:.0f} s, {machine()}; "
            f"{opts.connections} connections, {opts.seconds:.0f} s a load, {opts.rounds} interleaved "
            f"rounds, medians; {'wrk' if wrk_available() else 'asyncio client'}):",
            table(["target", "req/s", "p50 ms", "p99 ms"], rows),
            table(
                [
                    "champion",
                    "/health ÷ bare GET",
                    "predict ÷ bare POST",
                    "predict / V2 infer ÷ MLServer infer",
                    "predict p99 ≤ MLServer's",
                    "1,000-row batch rows/s: columns / rows / in-process floor",
                ],
                targets,
            ),
            "; ".join(within) or "",
        ]
    )


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--tool", choices=("auto", "wrk", "asyncio"), default="auto")
    p.add_argument("--no-mlserver", dest="mlserver", action="store_false")
    p.add_argument("--families", default="logistic_regression,hist_gradient_boosting")
    p.add_argument("--no-write", action="store_true")
    opts = p.parse_args(argv)
    pin_blas()
    started = time.perf_counter()
    bare, bare_port = start_bare()
    try:
        res = measure(opts.families.split(","), opts, bare_port)
    finally:
        stop_pid(bare)
    text = report(res, opts, time.perf_counter() - started)
    print(text)
    if not opts.no_write:
        write_section("serving", f"## Serving: against a bare Litestar app and MLServer\n\n{text}")
    return text


if __name__ == "__main__":
    main()
