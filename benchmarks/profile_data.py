"""Profiles of the data layer's hot paths, in process, with cProfile: where the CPU goes.

    uv run python benchmarks/profile_data.py ingest-json   # 10,000-row JSON batches, scored
    uv run python benchmarks/profile_data.py ingest-csv    # the same as CSV
    uv run python benchmarks/profile_data.py read          # the newest 1,000,000 rows as arrays
    uv run python benchmarks/profile_data.py check         # one check at 10,000 and 1,000,000 rows

Each prints the CPU seconds per call (``time.process_time``: what the code costs,
whatever else loads the box) and the top functions by own time. A real SQLite file in a
temporary directory, the real composition root; the champion is a LogisticRegression
fitted on the first batch and swapped into the holder, as a promotion does.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

N_FEATURES = 20
BATCH = 10_000
NAMES = [f"f{i + 1}" for i in range(N_FEATURES)]
W = np.random.default_rng(0).normal(size=N_FEATURES)


def batch(k: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(k)
    x = np.round(rng.normal(size=(BATCH, N_FEATURES)), 6)
    return x, ((x @ W) > 0).astype(np.int64)


def json_body(x: np.ndarray, y: np.ndarray) -> bytes:
    rows = [
        {**dict(zip(NAMES, r, strict=True)), "target": int(t)}
        for r, t in zip(x.tolist(), y.tolist(), strict=True)
    ]
    return msgspec.json.encode({"rows": rows})


def csv_body(x: np.ndarray, y: np.ndarray) -> bytes:
    out = io.StringIO()
    out.write(",".join([*NAMES, "target"]) + "\n")
    np.savetxt(out, np.column_stack([x, y]), fmt=["%.6f"] * N_FEATURES + ["%d"], delimiter=",")
    return out.getvalue().encode()


def services(data_dir: Path) -> Any:
    """The composition root on ``data_dir``, with a champion fitted on what is stored."""
    from continual.adapters.models import CompiledModel, fit, one_thread
    from continual.bootstrap import bootstrap
    from continual.services.holder import ModelBundle
    from continual.settings import load_settings

    one_thread()
    settings = load_settings(
        {
            "CONTINUAL_DATA_DIR": str(data_dir),
            "API_KEY": "k" * 32,
            "CONTINUAL_MAX_BATCH_ROWS": str(BATCH),
            "CONTINUAL_COOLDOWN_SECONDS": "86400",
        },
        env_file=None,
    )
    svc = bootstrap(settings)
    if svc.ingest.schema() is None:
        svc.ingest.add_rows(msgspec.json.decode(json_body(*batch(0)))["rows"])
    schema = svc.ingest.schema()
    got = svc._database.rows.recent_rows(schema, 5000)
    model = CompiledModel.of(fit("logistic_regression", schema, got.x, got.y, 0), schema)
    svc.holder.swap(ModelBundle("1", "run", "logistic_regression", model, schema, "-", None, 0))
    return svc


def big_database(path: Path, rows: int) -> None:
    """``rows`` labelled rows, each scored by version 1, written as the service stores them."""
    from continual.adapters.db import open_database
    from continual.core.schema import infer_schema

    db = open_database(f"sqlite:///{path}")
    schema = db.meta.fix_schema(
        infer_schema({**dict.fromkeys(NAMES, 0.0), "target": 0}, "target", "-")
    )
    assert schema is not None
    for k in range(rows // BATCH):
        x, y = batch(k)
        flat = x.astype("<f8").tobytes()
        width = 8 * N_FEATURES
        blobs = [flat[i : i + width] for i in range(0, len(flat), width)]
        db.rows.insert_rows(
            time.time(), "data", blobs, [str(v) for v in y.tolist()], "1", [True] * BATCH
        )
    db.close()


def profile(label: str, fn: Callable[[], object], calls: int) -> None:
    fn()  # warm
    cpu = []
    for _ in range(calls):
        t = time.process_time()
        fn()
        cpu.append(time.process_time() - t)
    print(f"{label}: {statistics.median(cpu):.4f} CPU s a call (median of {calls})")
    pr = cProfile.Profile(time.process_time)  # CPU, not wall: the same on a busy box
    pr.enable()
    for _ in range(calls):
        fn()
    pr.disable()
    pstats.Stats(pr).sort_stats("tottime").print_stats(12)


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("what", choices=("ingest-json", "ingest-csv", "read", "check"))
    what = p.parse_args().what
    work = Path(tempfile.mkdtemp(prefix="continual-profile-"))
    try:
        if what.startswith("ingest"):
            svc = services(work / "data")
            bodies = iter(
                [
                    (json_body if what == "ingest-json" else csv_body)(*batch(k))
                    for k in range(1, 12)
                ]
            )

            from continual.web.rowtype import row_decoder

            decoder = row_decoder(svc.ingest.schema())

            def step() -> object:
                body = next(bodies)
                if what == "ingest-json":  # as POST /data does: the schema-made Struct
                    return svc.ingest.add_checked(decoder.decode(body))
                return svc.ingest.add_csv(body)

            profile(what, step, 5)
            return
        sizes = (10_000, 1_000_000) if what == "check" else (1_000_000,)
        big_database(work / "big.db", max(sizes))
        for n in sizes:
            data = work / f"data-{n}"
            data.mkdir()
            shutil.copy(work / "big.db", data / "continual.db")
            if n < max(sizes):
                with sqlite3.connect(data / "continual.db") as conn:
                    conn.execute("DELETE FROM labelled_rows WHERE id > ?", (n,))
            svc = services(data)
            if what == "read":
                rows, schema = svc._database.rows, svc.ingest.schema()
                profile(f"read {n:,} rows", lambda r=rows, s=schema, k=n: r.recent_rows(s, k), 3)
            else:
                profile(f"check at {n:,} rows", lambda m=svc.monitor: asyncio.run(m.check()), 10)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
