"""A check costs O(window), not O(history): shown on a million rows of history."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import text

from tests.conftest import train


def test_check_on_a_million_rows_reads_only_its_window(client_factory: Any) -> None:
    """With 1,000,000 scored rows the check answers from the newest window, via the index."""
    api = client_factory(CONTINUAL_EVAL_WINDOW="500", CONTINUAL_MIN_SAMPLES="100")
    train(api, n=600)
    rows = api.app_.services._database.rows
    features = np.asarray([0.5, -0.5]).tobytes()  # the packed form of one row
    total = 1_000_000
    chunk = 100_000
    for start in range(0, total, chunk):
        # history: correct except the newest 100 rows, so the window's accuracy is known
        correct = [i < total - 100 for i in range(start, start + chunk)]
        rows.insert_rows(0.0, "data", [features] * chunk, ["1"] * chunk, "1", correct)
    check = api.post("/check").json()
    assert check["samples"] == 500
    assert check["accuracy"] == 0.8  # 400 of the newest 500 are correct
    # 100 misses in a row at the end: the drift detector fires although 0.8 is not below 0.8
    assert check["detector_fired"] is True
    assert check["decision"] == "retrain"
    assert "one class" in check["retrain_error"]  # the synthetic history has a single label
    with rows.db.engine.connect() as conn:
        plan = " ".join(
            str(row[-1])
            for row in conn.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT correct FROM labelled_rows "
                    "WHERE scored_version = '1' AND id > 0 ORDER BY id DESC LIMIT 500"
                )
            )
        )
    assert "USING INDEX ix_rows_scored_version_id" in plan or "USING COVERING INDEX" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # no sort of the history
    status = api.get("/model-status").json()
    assert (status["samples"], status["accuracy"]) == (500, 0.8)
