"""The two typed layouts of features, measured side by side on SQLite (issue 16).

``columns``: one REAL column per feature; ``packed``: one BLOB per row holding the
row's float64 values (category codes for categorical features). Each is timed writing
N rows with the driver's ``executemany`` and reading them back as one float64 matrix,
against the old layout (one JSON text per row, decoded by msgspec) as the floor.

    uv run python benchmarks/storage.py [rows] [features]
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import numpy as np


def _db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _timed(fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run(n: int, k: int) -> list[tuple[str, float, float, int]]:
    """(layout, write seconds, read seconds, file bytes) for each layout."""
    x = np.round(np.random.default_rng(0).normal(size=(n, k)), 6)
    names = [f"f{i}" for i in range(k)]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        # JSON (the old layout)
        conn = _db(Path(tmp) / "json.db")
        conn.execute("CREATE TABLE r (id INTEGER PRIMARY KEY, features TEXT, label TEXT)")
        enc = msgspec.json.encode
        dec = msgspec.json.Decoder(list[dict[str, float]]).decode

        def write_json() -> None:
            rows = [(enc(dict(zip(names, r, strict=True))).decode(), "1") for r in x.tolist()]
            with conn:
                conn.executemany("INSERT INTO r (features, label) VALUES (?, ?)", rows)

        def read_json() -> np.ndarray:
            got = conn.execute("SELECT features FROM r ORDER BY id").fetchall()
            rows = dec(("[" + ",".join(f for (f,) in got) + "]").encode())
            return np.array([[r[c] for c in names] for r in rows])

        w, _ = _timed(write_json)
        r, m = _timed(read_json)
        assert np.allclose(m, x)
        out.append(("json (old)", w, r, (Path(tmp) / "json.db").stat().st_size))
        conn.close()

        conn = _db(Path(tmp) / "columns.db")
        cols = ", ".join(f"{c} REAL" for c in names)
        conn.execute(f"CREATE TABLE r (id INTEGER PRIMARY KEY, {cols}, label TEXT)")

        def write_columns() -> None:
            marks = ", ".join("?" * (k + 1))
            with conn:
                conn.executemany(
                    f"INSERT INTO r ({', '.join(names)}, label) VALUES ({marks})",
                    [(*r, "1") for r in x.tolist()],
                )

        def read_columns() -> np.ndarray:
            got = conn.execute(f"SELECT {', '.join(names)} FROM r ORDER BY id").fetchall()
            return np.array(got, dtype=np.float64)

        w, _ = _timed(write_columns)
        r, m = _timed(read_columns)
        assert np.array_equal(m, x)
        out.append(("columns", w, r, (Path(tmp) / "columns.db").stat().st_size))
        conn.close()

        conn = _db(Path(tmp) / "packed.db")
        conn.execute("CREATE TABLE r (id INTEGER PRIMARY KEY, x BLOB, label TEXT)")

        def write_packed() -> None:
            flat = x.tobytes()
            width = 8 * k
            with conn:
                conn.executemany(
                    "INSERT INTO r (x, label) VALUES (?, ?)",
                    [(flat[i : i + width], "1") for i in range(0, len(flat), width)],
                )

        def read_packed() -> np.ndarray:
            got = conn.execute("SELECT x FROM r ORDER BY id").fetchall()
            return np.frombuffer(b"".join(b for (b,) in got), dtype=np.float64).reshape(-1, k)

        w, _ = _timed(write_packed)
        r, m = _timed(read_packed)
        assert np.array_equal(m, x)
        out.append(("packed", w, r, (Path(tmp) / "packed.db").stat().st_size))
        conn.close()
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    results = run(n, k)
    floor_w, floor_r = results[0][1], results[0][2]
    print(f"{n:,} rows x {k} features, SQLite (WAL)")
    print(
        f"{'layout':<12} {'write s':>8} {'read s':>8} {'write/json':>10} {'read/json':>9} {'MB':>6}"
    )
    for name, w, r, size in results:
        print(
            f"{name:<12} {w:8.3f} {r:8.3f} {w / floor_w:10.2f} {r / floor_r:9.2f} {size / 1e6:6.1f}"
        )


if __name__ == "__main__":
    main()
