"""The idempotency key of a batch must exist exactly when the batch's rows do."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from continual.adapters.db import open_database
from continual.adapters.db.rows import claim


def test_a_claimed_key_is_rolled_back_with_its_batch(tmp_path: Path) -> None:
    """When the rows of a batch fail, its key is not left behind to answer 'duplicate'."""
    engine = open_database(f"sqlite:///{tmp_path / 'c.db'}").db.engine

    def claim_then_fail() -> None:
        with engine.begin() as conn:
            claim(conn, "batch-1", "digest", 0.0, 1)
            raise RuntimeError("the rows could not be written (disk full, crash, ...)")

    with pytest.raises(RuntimeError):
        claim_then_fail()
    with engine.connect() as conn:
        keys = conn.execute(text("SELECT key FROM ingest_batches")).scalars().all()
    assert keys == []
