"""Schema migrations: a 0.x database upgrades with nothing lost, on SQLite and PostgreSQL;
the last migration downgrades; replicas starting together migrate once, under a lock."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from continual.adapters.db import migrate, open_database
from continual.core.frame import unpack

CLI = [sys.executable, "-c", "from continual.cli import main; main()"]
FIXTURE = Path(__file__).parent / "fixtures" / "release-0.x.sqlite"
TABLES = (
    "labelled_rows",
    "predictions",
    "feedback",
    "model_versions",
    "served_periods",
    "events",
    "checks",
    "meta",
    "leases",
    "ingest_batches",
)
KEYS = {"predictions": "id", "feedback": "prediction_id", "model_versions": "version"}
KEYS |= {"meta": "key", "leases": "name", "ingest_batches": "key"}


def release_rows() -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of the 0.x fixture, as that release stored it."""
    conn = sqlite3.connect(FIXTURE)
    conn.row_factory = sqlite3.Row
    try:
        return {
            t: [dict(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY {KEYS.get(t, 'id')}")]
            for t in TABLES
        }
    finally:
        conn.close()


def release_database(url: str, tmp_path: Path) -> str:
    """The 0.x fixture's database at ``url``: copied for SQLite; for PostgreSQL, the 0.x
    layout (migration 0001, which is that release's ``create_all``) filled with its rows."""
    if url.startswith("sqlite"):
        target = tmp_path / "release.sqlite"
        shutil.copy(FIXTURE, target)
        return f"sqlite:///{target}"
    engine = migrate.make_engine(url)
    migrate.upgrade(engine, "0001")
    with engine.begin() as conn:  # the tables as 0.x made them, without alembic_version
        conn.execute(text("DROP TABLE alembic_version"))
    with engine.begin() as conn:
        for table, rows in release_rows().items():
            for row in rows:
                if "correct" in row and row["correct"] is not None:
                    row["correct"] = bool(row["correct"])
                cols = ", ".join(f'"{c}"' for c in row)
                marks = ", ".join(f":{c}" for c in row)
                conn.execute(text(f"INSERT INTO {table} ({cols}) VALUES ({marks})"), row)
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database URL of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.sqlite'}"
    return str(request.getfixturevalue("postgres").database())


def test_a_release_0x_database_upgrades_with_every_row_intact(
    database_url: str, tmp_path: Path
) -> None:
    """After the upgrade every row, label, score, version, event and check of 0.x reads back."""
    old = release_rows()
    url = release_database(database_url, tmp_path)
    db = open_database(url)  # what start-up does: migrate to head under the lock
    assert migrate.current(db.db.engine) == migrate.head()
    schema = db.meta.get_schema()
    assert schema is not None
    assert schema.names == ("age", "city", "income")
    # labelled rows: features, labels, and the test-then-train score, row by row
    _, hi = db.rows.row_id_bounds()
    got = db.rows.recent_rows(schema, hi)
    want = old["labelled_rows"]
    assert got.ids.tolist() == [r["id"] for r in want]
    assert got.x.rows() == [json.loads(r["features"]) for r in want]
    assert got.y == [json.loads(r["label"]) for r in want]
    with db.db.engine.connect() as conn:
        rest = conn.execute(
            text(
                "SELECT arrived_at, source, scored_version, correct, prediction_id, batch_key "
                "FROM labelled_rows ORDER BY id"
            )
        ).all()
    assert [tuple(r) for r in rest] == [
        (
            r["arrived_at"],
            r["source"],
            r["scored_version"],
            None if r["correct"] is None else bool(r["correct"]),
            r["prediction_id"],
            r["batch_key"],
        )
        for r in want
    ]
    # predictions, and the feedback that labelled some of them
    preds = db.predictions.get_predictions([p["id"] for p in old["predictions"]])
    levels = db.categories.levels(schema)
    for p in old["predictions"]:
        version, blob, label = preds[p["id"]]
        assert (version, label) == (p["model_version"], str(json.loads(p["prediction"])))
        assert unpack(schema, [blob], levels).rows() == [json.loads(p["features"])]
    assert db.predictions.known_feedback([p["id"] for p in old["predictions"]]) == {
        f["prediction_id"] for f in old["feedback"]
    }
    # versions, served periods, events, checks, meta, leases, batches: as they were
    versions = {v.version: v for v in db.versions.versions()}
    for v in old["model_versions"]:
        mine = versions[v["version"]]
        assert (mine.status, mine.run_id, mine.sha256, mine.since_row_id) == (
            v["status"],
            v["run_id"],
            v["sha256"],
            v["since_row_id"],
        )
        assert (mine.metrics, mine.params) == (json.loads(v["metrics"]), json.loads(v["params"]))
        assert db.versions.reference(v["version"]) == json.loads(v["reference"])
    assert db.versions.champion() is not None
    periods = db.versions.served_periods()
    assert [(p.version, p.started_at, p.ended_at, p.reason) for p in reversed(periods)] == [
        (p["version"], p["started_at"], p["ended_at"], p["reason"]) for p in old["served_periods"]
    ]
    events = db.events.events(limit=1000)
    assert [(e.id, e.kind, e.message, e.data) for e in reversed(events)] == [
        (e["id"], e["kind"], e["message"], json.loads(e["data"])) for e in old["events"]
    ]
    checks = db.events.checks()
    assert [(c.at, c.decision, c.accuracy, c.reason) for c in checks] == [
        (c["at"], c["decision"], c["accuracy"], c["reason"]) for c in old["checks"]
    ]
    for m in old["meta"]:
        assert db.meta.get_meta(m["key"]) == m["value"]
    assert db.leases.lease_holder("check") == old["leases"][0]["holder"]
    with db.db.engine.connect() as conn:
        batches = conn.execute(text("SELECT key, rows, digest FROM ingest_batches")).all()
    assert sorted((k, n, d) for k, n, d in batches) == sorted(
        (b["key"], b["rows"], None) for b in old["ingest_batches"]
    )
    db.close()


def test_the_last_migration_downgrades_to_the_release_0x_rows(tmp_path: Path) -> None:
    """Down from head to 0001 gives back the 0.x tables, row for row (features as JSON)."""
    old = release_rows()
    url = release_database("sqlite", tmp_path)
    engine = migrate.make_engine(url)
    migrate.upgrade(engine)
    assert migrate.head() == "0003"
    # the last migration alone: down to 0002 drops the shadow table and the estimates
    assert migrate.downgrade(engine, "0002") == "0002"
    with engine.connect() as conn:
        names = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master"))}
        columns = {r[1] for r in conn.execute(text("PRAGMA table_info(checks)"))}
    assert "shadow_predictions" not in names
    assert not {"estimated_accuracy", "estimated_samples"} & columns
    migrate.upgrade(engine)
    assert migrate.current(engine) == "0003"
    assert migrate.downgrade(engine, "0001") == "0001"
    engine.dispose()
    back = {}
    conn = sqlite3.connect(tmp_path / "release.sqlite")
    conn.row_factory = sqlite3.Row
    for t in ("labelled_rows", "predictions", "feedback"):
        back[t] = [dict(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY {KEYS.get(t, 'id')}")]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert "categories" not in tables
    assert "shadow_predictions" not in tables
    for t in ("labelled_rows", "predictions", "feedback"):
        assert len(back[t]) == len(old[t])
        for mine, theirs in zip(back[t], old[t], strict=True):
            assert set(mine) == set(theirs)
            for col, value in theirs.items():
                if col in ("features", "label", "prediction"):
                    assert json.loads(mine[col]) == json.loads(value), (t, col)
                else:
                    assert mine[col] == value, (t, col)


def test_replicas_starting_together_migrate_once_under_the_lock(database_url: str) -> None:
    """Four `continual db upgrade` at once on one empty database: all succeed, at head."""
    env = {**os.environ, "DATABASE_URL": database_url, "API_KEY": "k" * 32}
    procs = [
        subprocess.Popen(
            [*CLI, "db", "upgrade"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outs
    said = [o.strip() for o, _ in outs]
    head = migrate.head()
    assert sum(s.startswith(f"database upgraded from empty to {head}") for s in said) == 1, said
    assert sum(s.endswith("nothing to do") for s in said) == 3, said
    current = subprocess.run(
        [*CLI, "db", "current"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert current.stdout.strip() == f"database at {head} (head {head}): up to date"
