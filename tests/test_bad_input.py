"""Bad input gets a clear 4xx JSON error naming the field or row, and stores nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api


def stored(client: Api) -> tuple[int, int]:
    """(labelled rows, predictions logged) right now."""
    client.app_.services.log.flush()
    rows = client.get("/data").json()["rows"]
    with client.app_.services._database.db.engine.connect() as conn:
        from sqlalchemy import text

        preds = conn.execute(text("SELECT count(*) FROM predictions")).scalar()
    return rows, int(preds or 0)


GOOD = {"feature1": 0.1, "feature2": -1.3, "target": 1}

DATA_CASES: list[tuple[str, Any, int, str]] = [
    ("wrong type", {"rows": [GOOD, {**GOOD, "feature2": "abc"}]}, 422, "rows[1].feature2"),
    ("boolean", {"rows": [{**GOOD, "feature1": True}]}, 422, "rows[0].feature1"),
    (
        "huge float",
        {"rows": [{**GOOD, "feature2": 1e300}]},
        422,
        "rows[0].feature2: number too large",
    ),
    (
        "huge integer beside floats",
        {"rows": [GOOD, {**GOOD, "feature1": 10**400}]},
        422,
        "rows[1].feature1: number too large",
    ),
    ("null", {"rows": [{**GOOD, "feature1": None}]}, 422, "rows[0].feature1"),
    ("missing feature", {"rows": [GOOD, {"feature1": 1.0, "target": 0}]}, 422, "feature2"),
    ("unknown feature", {"rows": [{**GOOD, "feature9": 1.0}]}, 422, "feature9"),
    ("missing label", {"rows": [GOOD, {"feature1": 1.0, "feature2": 2.0}]}, 422, "rows[1]"),
    ("float label", {"rows": [{**GOOD, "target": 0.5}]}, 422, "rows[0].target"),
    ("string label for int labels", {"rows": [{**GOOD, "target": "yes"}]}, 422, "rows[0].target"),
    ("empty batch", {"rows": []}, 422, "rows"),
    ("not a list", {"rows": {"a": 1}}, 422, "rows"),
    ("unknown top-level field", {"rows": [GOOD], "extra": 1}, 422, "extra"),
    ("infinity", b'{"rows": [{"feature1": 1e999, "feature2": 0, "target": 1}]}', 422, "rows[0]"),
    ("malformed JSON", b'{"rows": [', 400, "malformed"),
    (
        "duplicate key",
        b'{"rows": [{"feature1": 1, "feature1": 2, "feature2": 0, "target": 1}]}',
        422,
        "duplicate column 'feature1'",
    ),
]


@pytest.mark.parametrize(
    ("name", "body", "status", "names"), DATA_CASES, ids=[c[0] for c in DATA_CASES]
)
def test_bad_rows_are_refused_whole(
    trained: Api, name: str, body: Any, status: int, names: str
) -> None:
    """A batch with one bad row stores nothing and names the row and field."""
    before = stored(trained)
    if isinstance(body, bytes):
        r = trained.post("/data", content=body, headers={"content-type": "application/json"})
    else:
        r = trained.post("/data", json=body)
    assert r.status_code == status, r.text
    err = r.json()
    assert set(err) == {"error", "detail"}
    assert names.lower() in (err["error"] + str(err["detail"])).lower()
    assert "Traceback" not in r.text
    assert stored(trained) == before


CSV_CASES = [
    ("wrong header", "a,b,c\n1,2,3\n", "target"),
    ("duplicate column", "feature1,feature1,target\n1,2,1\n", "duplicate"),
    ("mixed types", "feature1,feature2,target\n1,2,1\n3,x,0\n", "rows[1].feature2"),
    ("short row", "feature1,feature2,target\n1,2,1\n3,0\n", "rows[1]"),
    ("no rows", "feature1,feature2,target\n", "rows"),
    ("nan cell", "feature1,feature2,target\nnan,2,1\n", "rows[0].feature1"),
    ("huge cell", "feature1,feature2,target\n1e300,2,1\n", "rows[0].feature1: number too large"),
    ("not utf-8", b"feature1,feature2,target\n\xff\xfe,1,1\n", "UTF-8"),
]


@pytest.mark.parametrize(("name", "body", "names"), CSV_CASES, ids=[c[0] for c in CSV_CASES])
def test_bad_csv_is_refused_whole(trained: Api, name: str, body: str | bytes, names: str) -> None:
    """CSV with a wrong header, mixed types or bad cells: 422 naming it, nothing stored."""
    before = stored(trained)
    r = trained.post("/data", content=body, headers={"content-type": "text/csv"})
    assert r.status_code == 422, r.text
    assert names.lower() in (r.json()["error"] + str(r.json()["detail"])).lower()
    assert stored(trained) == before


PREDICT_CASES: list[tuple[str, Any, int, str]] = [
    ("missing feature", {"features": {"feature1": 1.0}}, 422, "feature2"),
    ("unknown feature", {"features": {"feature1": 1.0, "feature2": 2.0, "zzz": 3}}, 422, "zzz"),
    (
        "string for number",
        {"features": {"feature1": "1", "feature2": 2.0}},
        422,
        "features[0].feature1",
    ),
    ("both shapes", {"features": {"feature1": 1, "feature2": 1}, "rows": []}, 422, "exactly one"),
    ("neither shape", {}, 422, "exactly one"),
    ("empty batch", {"rows": []}, 422, "rows"),
    (
        "bad row in batch",
        {"rows": [{"feature1": 1, "feature2": 1}, {"feature1": 1}]},
        422,
        "rows[1]",
    ),
]


@pytest.mark.parametrize(
    ("name", "body", "status", "names"), PREDICT_CASES, ids=[c[0] for c in PREDICT_CASES]
)
def test_bad_predictions_are_refused(
    trained: Api, name: str, body: Any, status: int, names: str
) -> None:
    """A bad prediction request logs nothing and names the field."""
    before = stored(trained)
    r = trained.post("/predict", json=body)
    assert r.status_code == status, r.text
    assert names.lower() in (r.json()["error"] + str(r.json()["detail"])).lower()
    assert stored(trained) == before


def test_feedback_with_wrong_label_type_stores_nothing(trained: Api) -> None:
    """Feedback whose label has the wrong type is refused whole, naming the item."""
    pid = trained.post("/predict", json={"features": {"feature1": 1, "feature2": 1}}).json()[
        "prediction_id"
    ]
    before = stored(trained)
    r = trained.post(
        "/feedback",
        json={"items": [{"prediction_id": pid, "label": 1}, {"prediction_id": pid, "label": "x"}]},
    )
    assert r.status_code == 422, r.text
    assert "items[1]" in r.json()["error"]
    assert stored(trained) == before


def test_oversized_batch_is_413(client_factory: Any) -> None:
    """A batch over CONTINUAL_MAX_BATCH_ROWS is 413 and stores nothing."""
    api = client_factory(CONTINUAL_MAX_BATCH_ROWS="10")
    r = api.post("/data", json={"rows": [GOOD] * 11})
    assert r.status_code == 413, r.text
    assert r.json()["detail"]["limit"] == 10
    assert api.get("/data").json()["rows"] == 0


def test_oversized_body_is_413(client_factory: Any) -> None:
    """A body over CONTINUAL_MAX_BODY_BYTES is 413 with the JSON error shape."""
    api = client_factory(CONTINUAL_MAX_BODY_BYTES="2048")
    rows = [GOOD] * 100
    r = api.post("/data", json={"rows": rows})
    assert r.status_code == 413, r.text
    assert set(r.json()) == {"error", "detail"}
    r = api.post("/predict", json={"rows": rows})
    assert r.status_code == 413
    assert api.get("/data").json()["rows"] == 0


def test_new_label_value_is_a_new_class(client_factory: Any) -> None:
    """A label not seen before is stored and the next model learns it."""
    api = client_factory()
    api.post("/generate", json={"n_samples": 600, "seed": 3})
    extra = [{"feature1": 8.0 + i / 100, "feature2": 8.0, "target": 2} for i in range(200)]
    assert api.post("/data", json={"rows": extra}).status_code == 200
    assert api.get("/data").json()["labels"]["2"] == 200
    api.post("/retrain")
    p = api.post("/predict", json={"features": {"feature1": 8.0, "feature2": 8.0}}).json()
    assert set(p["probabilities"]) == {"0", "1", "2"}
    assert p["prediction"] == 2


def test_generate_bounds_are_checked(api: Api) -> None:
    """Out-of-range generate parameters are 422 naming the field; nothing stored."""
    for body, field in [
        ({"n_samples": 0}, "n_samples"),
        ({"concept": 9}, "concept"),
        ({"n_features": 1}, "n_features"),
    ]:
        r = api.post("/generate", json=body)
        assert r.status_code == 422, r.text
        assert field in r.json()["error"] + str(r.json()["detail"])
    assert api.get("/data").json()["rows"] == 0


def test_unsupported_content_type_is_415(trained: Api) -> None:
    """POST /data with neither JSON nor CSV says which types it takes."""
    r = trained.post("/data", content=b"<xml/>", headers={"content-type": "application/xml"})
    assert r.status_code == 415
    assert "text/csv" in r.json()["error"]


def test_categorical_features_and_string_labels(client_factory: Any) -> None:
    """String features are categorical, string labels are classes; schema errors name them."""
    api = client_factory()
    rows = [
        {
            "age": float(20 + i % 50),
            "city": ["paris", "oslo", "rome"][i % 3],
            "target": "yes" if i % 3 == 0 else "no",
        }
        for i in range(300)
    ]
    r = api.post("/data", json={"rows": rows})
    assert r.status_code == 200, r.text
    assert api.get("/features").json()["features"] == [
        {"name": "age", "kind": "numeric"},
        {"name": "city", "kind": "categorical"},
    ]
    assert api.post("/retrain").status_code == 200
    p = api.post("/predict", json={"features": {"age": 30, "city": "paris"}}).json()
    assert p["prediction"] == "yes"
    unseen = api.post("/predict", json={"features": {"age": 30, "city": "tokyo"}})
    assert unseen.status_code == 200  # an unseen category encodes as all zeros
    bad = api.post("/data", json={"rows": [{"age": 3, "city": 4, "target": "no"}]})
    assert bad.status_code == 422
    assert "rows[0].city" in bad.json()["error"]
