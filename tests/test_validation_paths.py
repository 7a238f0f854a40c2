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


# ---- CSV: the pyarrow fast path (services/csvbody.py) against the general path --------

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


# ---- JSON: the typed decoder of POST /data (web/rowtype.py) against the general path ----

STR_LABEL = FeatureSchema((Feature("a", "numeric"), Feature("b", "numeric")), "target", "str")


def test_typed_json_rows_are_the_general_paths_rows() -> None:
    """Whatever the schema-made decoder accepts, the general path accepts too, with the
    same values in schema order and the same labels; and it takes most good batches
    itself (else every batch would pay for both)."""
    import msgspec
    import numpy as np

    from continual.web.rowtype import row_decoder

    rng = random.Random(5)
    taken = accepted = 0
    for _ in range(3000):
        schema = rng.choice([NUMERIC, MIXED, SINGLE, STR_LABEL])
        rows = [_row(rng, schema) for _ in range(rng.randint(1, 4))]
        if schema is STR_LABEL:
            for row in rows:
                if "target" in row and rng.random() < 0.8:
                    row["target"] = rng.choice(["a", "b"])
        body = msgspec.json.encode({"rows": rows})
        decoder = row_decoder(schema)
        assert decoder is not None
        typed = decoder.decode(body)
        general = _outcome(
            schema_mod.validate_labelled, msgspec.json.decode(body)["rows"], schema, 100
        )
        accepted += general[0] == "ok"
        if typed is None:
            continue
        taken += 1
        batch = schema_mod.validate_labelled(msgspec.json.decode(body)["rows"], schema, 100)
        values = typed.values.tolist() if isinstance(typed.values, np.ndarray) else typed.values
        assert [tuple(v) for v in values] == [tuple(v) for v in batch.values], rows
        kinds = [type(a) for v in values for a in v]
        assert kinds == [type(a) for v in batch.values for a in v], rows
        assert typed.labels == batch.labels, rows
        assert typed.names == batch.names
    # the general path also takes float labels such as 2.0; all else good is taken here
    assert accepted > 80
    assert taken >= 0.9 * accepted


def test_typed_json_decoder_steps_aside() -> None:
    """A label that is also a feature name, an empty batch and a body that is not JSON
    are left to the general path, which says what is wrong."""
    from continual.web.rowtype import row_decoder

    clash = FeatureSchema((Feature("target", "numeric"),), "target", "int")
    assert row_decoder(clash) is None
    decoder = row_decoder(NUMERIC)
    assert decoder is not None
    assert decoder.decode(b'{"rows": []}') is None
    assert decoder.decode(b'{"rows": [') is None
    assert decoder.decode(b'{"rows": [{"a": 1, "b": 2, "target": 1}], "x": 1}') is None
    ok = decoder.decode(b'{"rows": [{"b": 2, "a": 1, "target": 1}]}')
    assert ok is not None
    assert ok.values.tolist() == [[1.0, 2.0]]
    assert ok.labels == [1]


def test_columns_are_checked_as_their_rows_are() -> None:
    """A columnar batch is accepted with the same values, or refused, as the same batch
    sent as rows (a column is checked whole, so of two bad fields it may name the other)."""
    import numpy as np

    rng = random.Random(9)
    seen = {"ok": 0, "refused": 0}
    for _ in range(1500):
        schema = rng.choice([NUMERIC, MIXED, SINGLE])
        n = rng.randint(1, 4)
        columns: dict[str, list[object]] = {}
        for f in schema.features:
            good = [0.5, -1.25, 3, 2**53, -(2**53)] if f.kind == "numeric" else ["p", "q"]
            columns[f.name] = [rng.choice(good if rng.random() < 0.9 else ODD) for _ in range(n)]
        rows = [{k: v[i] for k, v in columns.items()} for i in range(n)]
        by_rows = _outcome(schema_mod.validate_unlabelled, rows, schema, 100)
        by_columns = _outcome(schema_mod.validate_columns, columns, schema, 100, "columns")
        assert by_columns[0] == by_rows[0], columns
        if by_rows[0] == "refused":
            if n == 1:  # one row: rows and columns check the fields in the same order
                assert by_columns[3] == by_rows[3], columns
            seen["refused"] += 1
            continue
        frame = schema_mod.validate_columns(columns, schema, 100, "columns")
        got = schema_mod.validate_unlabelled(rows, schema, 100)
        assert [tuple(v) for v in frame.tuples()] == [tuple(v) for v in got], columns
        assert np.isfinite(frame.values).all()
        seen["ok"] += 1
    assert min(seen.values()) > 200


def test_typed_columns_are_the_general_paths_frame() -> None:
    """Whatever the schema-made columns decoder of ``POST /predict`` accepts, the general
    path accepts too, as the same frame (values, codes and levels) and answer form; and it
    takes most good batches itself."""
    import msgspec
    import numpy as np

    from continual.web.rowtype import column_decoder

    rng = random.Random(11)
    taken = accepted = 0
    for _ in range(3000):
        schema = rng.choice([NUMERIC, MIXED, SINGLE])
        n = rng.randint(0, 4)
        columns: dict[str, list[object]] = {}
        for f in schema.features:
            if rng.random() < 0.03:
                continue  # a missing column
            good = [0.5, -1.25, 3, 2**53, -(2**53)] if f.kind == "numeric" else ["p", "q", "r"]
            size = n if rng.random() < 0.95 else n + 1
            columns[f.name] = [
                rng.choice(good if rng.random() < 0.95 else ODD) for _ in range(size)
            ]
        if rng.random() < 0.03:
            columns["zz"] = [1.0] * n
        body: dict[str, object] = {"columns": columns}
        if rng.random() < 0.5:
            body["output"] = rng.choice(["rows", "columns", "table"])
        raw = msgspec.json.encode(body)
        typed = column_decoder(schema).decode(raw, 3)
        general = _outcome(schema_mod.validate_columns, columns, schema, 3, "columns")
        form_ok = body.get("output", "rows") in ("rows", "columns")
        accepted += general[0] == "ok" and form_ok
        if typed is None:
            continue
        taken += 1
        assert form_ok, body
        assert typed.output == body.get("output", "rows"), body
        frame = schema_mod.validate_columns(columns, schema, 3, "columns")
        assert np.array_equal(typed.frame.values, frame.values), body
        assert typed.frame.levels == frame.levels, body
        assert typed.frame.values.flags.c_contiguous
    assert accepted > 1000
    assert taken >= 0.9 * accepted
