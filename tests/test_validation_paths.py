"""The fast whole-batch checks accept and refuse exactly what the field-by-field checks do,
with the same normalised rows and the same error naming the row and field."""

from __future__ import annotations

import random
from typing import Any

import pytest

import continual.core.schema as schema_mod
from continual.core.errors import ContinualError
from continual.core.types import Feature, FeatureSchema

NUMERIC = FeatureSchema((Feature("a", "numeric"), Feature("b", "numeric")), "target", "int")
MIXED = FeatureSchema((Feature("a", "numeric"), Feature("c", "categorical")), "target", "str")
SINGLE = FeatureSchema((Feature("a", "numeric"),), "target", "int")
ODD = [
    0,
    1,
    1.5,
    True,
    None,
    "x",
    "",
    2**53,
    2**53 + 1,
    float("inf"),
    float("nan"),
    "y" * 1001,
    [1],
]


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return ("ok", repr(fn(*args)))
    except ContinualError as exc:
        return ("refused", type(exc).__name__, exc.message, exc.detail)


def _both(monkeypatch: pytest.MonkeyPatch, fast: str, fn: Any, *args: Any) -> tuple[Any, Any]:
    quick = _outcome(fn, *args)
    with monkeypatch.context() as m:
        m.setattr(schema_mod, fast, lambda *_: None)
        slow = _outcome(fn, *args)
    return quick, slow


def _row(rng: random.Random, schema: FeatureSchema) -> dict[str, object]:
    names = [*schema.names, *rng.choice([[], ["target"], ["zz"], ["target", "zz"]])]
    row: dict[str, object] = {}
    for name in names:
        if rng.random() < 0.05:
            continue  # a missing column
        if name == "target":
            good = [0, 1] if schema.label_kind == "int" else ["a", "b"]
            row[name] = rng.choice(good if rng.random() < 0.7 else [0, "a", "", True, 2**60, 2.0])
        elif rng.random() < 0.85:
            kind = next((f.kind for f in schema.features if f.name == name), "numeric")
            row[name] = rng.choice([0.5, -1.25, 3] if kind == "numeric" else ["p", "q"])
        else:
            row[name] = rng.choice(ODD)
    return row


def test_fast_and_field_by_field_checks_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    for _ in range(3000):
        schema = rng.choice([NUMERIC, MIXED, SINGLE])
        rows = [_row(rng, schema) for _ in range(rng.randint(1, 4))]
        for fast, fn in (
            ("_fast_columns", schema_mod.validate_unlabelled),
            ("_fast_labelled", schema_mod.validate_labelled),
        ):
            quick, slow = _both(monkeypatch, fast, fn, rows, schema, 100)
            assert quick == slow, rows


def test_integers_become_floats_in_schema_order() -> None:
    rows = [{"b": 2, "a": 1.5}]
    assert schema_mod.validate_unlabelled(rows, NUMERIC, 10) == [(1.5, 2.0)]


# ---- CSV: the numpy fast path (services/csvbody.py) against the general path ----------

CSV_CELLS = ["1.5", "-2", " 3 ", "1e3", "1_000", "nan", "inf", "", "1e400", '"4"', "x", "0x1"]
CSV_LABELS = ["0", "1", " 1", "1.0", "", "9007199254740993", "+1", "x"]


def _csv_body(rng: random.Random) -> str:
    header = rng.choice(
        ["a,b,target"] * 3 + ["b,target,a", "a,b,target,z", "a,target", "a,a,target"]
    )
    lines = [header]
    for _ in range(rng.randint(0, 3)):
        cells = [
            rng.choice(CSV_LABELS if rng.random() < 0.15 else ["0", "1", " 1"])
            if name == "target"
            else rng.choice(CSV_CELLS if rng.random() < 0.1 else CSV_CELLS[:4])
            for name in header.split(",")
        ]
        if rng.random() < 0.05:
            cells.append("7")  # a row one cell too long
        lines.append(",".join(cells))
        if rng.random() < 0.05:
            lines.append(rng.choice(["", " ", "\r"]))
    end = rng.choice(["\n", "\r\n"])
    return end.join(lines) + rng.choice(["", end])


def _stored_csv(body: str, fast: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    from continual.core.clock import SystemClock
    from continual.services import ingest as ingest_mod
    from continual.services.holder import ModelHolder
    from continual.services.predict import PredictionLog
    from tests.fakes import FakeStorage

    storage = FakeStorage()
    storage.meta.schema = NUMERIC
    service = ingest_mod.IngestService(
        storage.meta,
        storage.categories,
        storage.rows,
        storage.predictions,
        ModelHolder(),
        PredictionLog(storage.predictions, storage.categories, 10),
        SystemClock(),
        "target",
        3,
    )
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(ingest_mod, "numeric_batch", lambda *_: None)
        outcome = _outcome(service.add_csv, body.encode())
    return outcome, [(r[3], r[4]) for r in storage.rows.stored]


def test_csv_fast_path_stores_and_refuses_as_the_general_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A CSV body of numbers is stored with the same values, or refused with the same
    error, whether numpy parses it or the csv module does."""
    rng = random.Random(11)
    taken = 0
    for _ in range(600):
        body = _csv_body(rng)
        quick = _stored_csv(body, True, monkeypatch)
        slow = _stored_csv(body, False, monkeypatch)
        assert quick == slow, body
        taken += quick[0][0] == "ok"
    assert taken > 150  # the bodies exercise acceptance, not only refusals
