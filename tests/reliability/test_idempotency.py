"""The idempotency key of a batch must exist exactly when the batch's rows do."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from continual.adapters.db import Store, make_engine


def test_a_claimed_key_is_rolled_back_with_its_batch(tmp_path: Path) -> None:
    """When the rows of a batch fail, its key is not left behind to answer 'duplicate'."""
    store = Store(make_engine(f"sqlite:///{tmp_path / 'c.db'}"))

    def claim_then_fail() -> None:
        with store.engine.begin() as conn:
            store._claim(conn, "batch-1", 0.0, 1)
            raise RuntimeError("the rows could not be written (disk full, crash, ...)")

    with pytest.raises(RuntimeError):
        claim_then_fail()
    with store.engine.connect() as conn:
        keys = conn.execute(text("SELECT key FROM ingest_batches")).scalars().all()
    assert keys == []
