"""The prediction log stores what was served, whichever form the batch came in, and loses
nothing when a flush fails (in-memory storage ports: milliseconds)."""

from __future__ import annotations

from typing import Any

import pytest

from continual.core.frame import unpack
from continual.core.schema import validate_columns, validate_unlabelled
from continual.core.types import Feature, FeatureSchema
from continual.services.predict import PredictionLog
from tests.fakes import FakeCategories, FakePredictions

NUMERIC = FeatureSchema((Feature("a", "numeric"), Feature("b", "numeric")), "y", "int")
MIXED = FeatureSchema((Feature("a", "numeric"), Feature("c", "categorical")), "y", "str")


class FailingOnce(FakePredictions):
    """A predictions store whose first insert fails, as a locked database would."""

    def __init__(self, categories: FakeCategories) -> None:
        super().__init__(categories)
        self.failures = 1

    def insert_predictions(self, params: list[tuple[str, float, str, bytes, str]]) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("database is locked")
        super().insert_predictions(params)


def _stored(
    store: FakePredictions, categories: FakeCategories, schema: FeatureSchema
) -> dict[str, tuple[object, ...]]:
    levels = categories.levels(schema)
    return {
        pid: tuple(unpack(schema, [blob], levels).tuples()[0])
        for pid, (_v, blob, _p) in store.logged.items()
    }


@pytest.mark.parametrize("schema", [NUMERIC, MIXED], ids=["numeric", "mixed"])
def test_rows_and_columns_are_stored_alike_and_kept_through_a_failed_flush(
    schema: FeatureSchema,
) -> None:
    categories = FakeCategories()
    store = FailingOnce(categories)
    log = PredictionLog(store, categories, 100)
    second = [2.0, "q"] if schema is MIXED else [2.0, -4.0]
    rows = [{"a": 1.5, schema.names[1]: second[1] if schema is MIXED else 3.0}]
    columns = {"a": [0.5, -1.0], schema.names[1]: ["p", "q"] if schema is MIXED else [7.0, 8.0]}
    log.add([("r1", 1.0, "1", v, "0") for v in validate_unlabelled(rows, schema, 10)], schema)
    log.add_frame(
        ["c1", "c2"], 2.0, "1", validate_columns(columns, schema, 10, "columns"), ["0", "1"]
    )
    assert len(log) == 3
    with pytest.raises(RuntimeError):
        log.flush()
    assert len(log) == 3  # nothing lost: all of it waits for the next flush
    assert log.flush() == 3
    assert len(log) == 0
    got = _stored(store, categories, schema)
    assert got["r1"] == tuple(rows[0][n] for n in schema.names)
    assert [got["c1"], got["c2"]] == [tuple(columns[n][i] for n in schema.names) for i in (0, 1)]
    assert {pid: p for pid, (_v, _b, p) in store.logged.items()} == {
        "r1": "0",
        "c1": "0",
        "c2": "1",
    }


def test_a_model_swap_takes_the_heap_out_of_the_collectors_full_passes(trained: Any) -> None:
    """After a swap, what the process holds is frozen: a full collection no longer walks
    the libraries and the model (each such pass stalled every request for ~0.2 s)."""
    import gc

    holder = trained.app_.services.holder
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    holder.swap(holder.current)
    assert gc.get_freeze_count() > 10_000
