"""The training worker's copy of the pool (``services.pool``) on a real SQLite database: a
retrain after new rows reads only those, and the answer is always what a fresh read of
the database gives, also when a row commits late below the newest id held."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from continual.adapters.db import Database, open_database
from continual.core.frame import Labelled
from continual.core.schema import infer_schema
from continual.core.types import FeatureSchema
from continual.services import training
from continual.services.pool import PoolCache
from continual.services.trainjob import TrainJob
from tests.fakes import FakeRegistry


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Database, FeatureSchema]:
    database = open_database(url(tmp_path))
    schema = database.meta.fix_schema(
        infer_schema({"a": 0.0, "b": 0.0, "target": 0}, "target", "test")
    )
    return database, schema


def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pool.db'}"


def add(database: Database, first: int, n: int, ids: bool = False) -> None:
    """Rows ``first`` .. ``first + n - 1``: features (i, -i), label i % 3 (explicit ids with
    ``ids``, as rows whose ids were drawn before they committed)."""
    x = np.array([[float(i), float(-i)] for i in range(first, first + n)])
    blobs = [r.tobytes() for r in x]
    labels = [str(i % 3) for i in range(first, first + n)]
    if not ids:
        database.rows.insert_rows(1.0, "data", blobs, labels, None, [None] * n)
        return
    with database.db.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO labelled_rows (id, arrived_at, source, feature_values, label) "
            "VALUES (?, 1.0, 'data', ?, ?)",
            [(first + i, b, lab) for i, (b, lab) in enumerate(zip(blobs, labels, strict=True))],
        )


def same(a: Labelled, b: Labelled) -> bool:
    return (
        a.ids.tolist() == b.ids.tolist()
        and np.array_equal(a.x.values, b.x.values)
        and list(a.y) == list(b.y)
    )


def test_new_rows_are_read_alone_and_the_answer_is_a_fresh_reads(
    stored: tuple[Database, FeatureSchema],
) -> None:
    database, schema = stored
    pool = PoolCache(database.rows)
    add(database, 1, 300)
    first = pool.recent_rows(schema, 1000)
    assert len(first) == 300
    assert first.y[:4] == [1, 2, 0, 1]
    for k in (1, 250, 5000):  # small, below and above the buffer's growth
        add(database, pool.size + 1, k)
        got = pool.recent_rows(schema, 10_000)
        assert same(got, database.rows.recent_rows(schema, 10_000))
    assert pool.cold_reads == 1
    # what was handed out earlier is unchanged by the rows appended since
    assert first.ids.tolist() == list(range(1, 301))
    assert first.x.values[-1].tolist() == [300.0, -300.0]


def test_a_row_committed_late_below_the_top_makes_it_read_afresh(
    stored: tuple[Database, FeatureSchema],
) -> None:
    database, schema = stored
    pool = PoolCache(database.rows)
    add(database, 1, 100)
    add(database, 102, 49, ids=True)
    assert len(pool.recent_rows(schema, 1000)) == 149
    add(database, 101, 1, ids=True)  # its id was drawn before 102's, it committed after
    got = pool.recent_rows(schema, 1000)
    assert 101 in got.ids.tolist()
    assert len(got) == 150
    assert same(got, database.rows.recent_rows(schema, 1000))
    assert pool.cold_reads == 2


def test_a_window_holds_the_newest_rows_and_reads_older_ones_when_asked(
    stored: tuple[Database, FeatureSchema],
) -> None:
    database, schema = stored
    pool = PoolCache(database.rows)
    add(database, 1, 400)
    assert pool.recent_rows(schema, 50).ids.tolist() == list(range(351, 401))
    add(database, 401, 200)
    got = pool.recent_rows(schema, 50)
    assert got.ids.tolist() == list(range(551, 601))
    assert pool.size <= 100
    assert pool.cold_reads == 1
    wider = pool.recent_rows(schema, 300)  # older rows than it holds: one more full read
    assert same(wider, database.rows.recent_rows(schema, 300))
    assert pool.cold_reads == 2


def test_a_retrain_after_the_start_up_read_reads_only_the_new_rows(
    stored: tuple[Database, FeatureSchema], tmp_path: Path
) -> None:
    """What the worker does at start-up (``warm_pool``), then a retrain: in this process,
    with the registry in memory."""
    database, _ = stored
    add(database, 1, 400)
    job = TrainJob(
        database_url=url(tmp_path),
        models_dir=str(tmp_path / "models"),
        model_types=("logistic_regression",),
        seed=0,
        strategy="all",
        train_window=100,
        replay_fraction=0.0,
        holdout_fraction=0.2,
        max_holdout=50,
        min_improvement=0.0,
        threshold=0.8,
        champion=None,
        trigger="test",
    )
    assert training.warm_pool(job) == 400
    add(database, 401, 100)
    outcome = training.train_challenger(job, FakeRegistry())
    _, pool = training._databases[job.database_url]
    assert pool.cold_reads == 1
    assert outcome.params["window_last_row"] == "500"
    assert int(outcome.params["window_rows"]) + outcome.holdout_rows == 500


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/self/maps")
def test_a_bulk_read_maps_the_file_and_leaves_no_map_behind(
    stored: tuple[Database, FeatureSchema], tmp_path: Path
) -> None:
    """The read maps the database file while it runs and unmaps it after (the pooled
    connection keeps no map, so no later query holds the file's pages resident); its rows
    are the same as through page reads."""
    database, schema = stored
    add(database, 1, 3000)
    with database.db.connect() as conn:  # the rows into the file (a read maps the file only)
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    path = str(tmp_path / "pool.db")

    def mapped() -> bool:
        maps = Path("/proc/self/maps").read_text().splitlines()
        return any(line.endswith(path) for line in maps)

    during = [
        mapped()
        for _ in database.db.fetch_chunks("SELECT id, feature_values FROM labelled_rows", (), 1000)
    ]
    assert during == [True, True, True]
    assert not mapped()
    got = database.rows.recent_rows(schema, 3000)
    assert not mapped()
    assert got.ids.tolist() == list(range(1, 3001))
    assert got.x.values[:, 1].tolist() == [-float(i) for i in range(1, 3001)]
    assert list(got.y) == [i % 3 for i in range(1, 3001)]


def test_a_bulk_import_leaves_room_for_the_next_rows(
    stored: tuple[Database, FeatureSchema],
) -> None:
    """After a read that grows the pool many times over, the next few rows go into the
    room it left: the held rows are not copied again."""
    database, schema = stored
    add(database, 1, 100)
    cache = PoolCache(database.rows)
    cache.recent_rows(schema, 10_000)
    add(database, 101, 2000)  # 20 times the pool: more than its room
    cache.recent_rows(schema, 10_000)
    buffer = cache.values.ctypes.data
    add(database, 2101, 10)
    got = cache.recent_rows(schema, 10_000)
    assert cache.values.ctypes.data == buffer  # appended in place
    assert cache.cold_reads == 1
    assert same(got, database.rows.recent_rows(schema, 10_000))
