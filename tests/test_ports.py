"""Services run on any implementation of the storage ports: here in-memory fakes, handed
in through the composition root (no database, no server; milliseconds)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from continual.bootstrap import Services, bootstrap
from continual.core.errors import InvalidInput
from continual.settings import load_settings
from tests.fakes import FakeStorage


@pytest.fixture
def services(tmp_path: Path) -> Services:
    """Services wired to fake storage."""
    settings = load_settings(
        {"CONTINUAL_DATA_DIR": str(tmp_path), "API_KEY": "k" * 32, "CONTINUAL_MIN_SAMPLES": "50"},
        env_file=None,
    )
    return bootstrap(settings, database=FakeStorage())


def test_ingest_stores_packed_rows_and_the_read_model_counts_them(services: Services) -> None:
    """Rows (a category among them) are stored packed, read back as the same rows, counted."""
    rows = [
        {"age": 30.5, "city": "Oslo", "target": "yes"},
        {"age": 41.0, "city": "Lima", "target": "no"},
        {"age": 22.0, "city": "Oslo", "target": "yes"},
    ]
    got = services.ingest.add_rows(rows, batch_key="b1")
    assert (got.accepted, got.scored_by) == (3, None)
    assert services.ingest.add_rows(rows, batch_key="b1").duplicate is True
    summary = services.reads.summary()
    assert (summary.rows, summary.labels) == (3, {"yes": 2, "no": 1})
    storage = services._database
    schema = storage.meta.get_schema()
    assert schema is not None
    back = storage.rows.recent_rows(schema, 10)
    assert back.x.rows() == [{k: v for k, v in r.items() if k != "target"} for r in rows]
    assert back.y == ["yes", "no", "yes"]
    with pytest.raises(InvalidInput, match=r"rows\[0\]\.city"):
        services.ingest.add_rows([{"age": 1.0, "city": 3, "target": "no"}])


def test_a_check_without_a_model_waits_for_data_and_is_recorded(services: Services) -> None:
    """With too few rows and no champion the check answers insufficient_data, on record."""
    services.ingest.add_rows([{"x": float(i), "target": i % 2} for i in range(10)])
    result = asyncio.run(services.monitor.check("test"))
    assert (result.decision, result.model_version) == ("insufficient_data", None)
    assert [c.decision for c in services.reads.checks()] == ["insufficient_data"]
