"""The served contract: the OpenAPI document follows the live feature schema, JSON is JSON
whatever curl labels it, OPTIONS lists every method, and every time is ISO 8601 UTC."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from tests.conftest import Api, train

FORM = {"content-type": "application/x-www-form-urlencoded"}  # what `curl -d` sends


def _doc(api: Api) -> dict[str, Any]:
    r = api.get("/schema/openapi.json")
    assert r.status_code == 200
    return dict(r.json()["components"]["schemas"])


def _swagger(api: Api) -> dict[str, Any]:
    """The document the Swagger page embeds (``spec: {...},``)."""
    page = api.get("/schema/swagger").text
    start = page.index("spec: ") + len("spec: ")
    doc, _ = json.JSONDecoder().raw_decode(page[start:])
    return dict(doc["components"]["schemas"])


def test_document_follows_the_schema_the_first_data_fixes(api: Api) -> None:
    """Before data rows are open; after it, exactly feature1/feature2 and an integer label."""
    before = _doc(api)
    row = before["DataRequest"]["properties"]["rows"]["items"]
    assert "additionalProperties" in row
    assert row["additionalProperties"] is not False
    assert row["required"] == ["target"]
    assert before["GenerateRequest"]["properties"]["n_features"]["maximum"] == 100

    assert api.post("/generate", json={"n_samples": 50, "seed": 1}).status_code == 200
    after = _doc(api)
    number = {"type": "number", "minimum": -(2**53), "maximum": 2**53}
    integer = {"type": "integer", "minimum": -(2**53), "maximum": 2**53}
    assert after["DataRequest"]["properties"]["rows"]["items"] == {
        "type": "object",
        "properties": {"feature1": number, "feature2": number, "target": integer},
        "required": ["feature1", "feature2", "target"],
        "additionalProperties": False,
    }
    one = after["PredictRequest"]["oneOf"][0]["properties"]["features"]
    assert one["required"] == ["feature1", "feature2"]
    assert one["additionalProperties"] is False
    assert after["FeedbackItem"]["properties"]["label"]["type"] == "integer"
    assert after["Prediction"]["properties"]["prediction"] == integer
    assert after["GenerateRequest"]["properties"]["n_features"]["enum"] == [2]
    assert _swagger(api) == after  # the rendered page follows too


def test_options_lists_every_method_of_a_path(api: Api) -> None:
    """OPTIONS /data allows GET and POST (working around litestar#4169)."""
    r = api.options("/data")
    assert r.status_code == 204
    assert r.headers["allow"] == "GET, OPTIONS, POST"
    assert api.options("/predict").headers["allow"] == "OPTIONS, POST"


def test_json_labelled_as_a_form_is_json_on_every_route(api: Api) -> None:
    """`curl -d` bodies work on every JSON route; CSV stays CSV; neither is a 415."""
    post = lambda path, body: api.post(path, content=body.encode(), headers=FORM)  # noqa: E731
    assert post("/generate", '{"n_samples": 300, "seed": 1}').status_code == 200
    r = post("/data", '{"rows": [{"feature1": 0.1, "feature2": -1.3, "target": 1}]}')
    assert (r.status_code, r.json()["accepted"]) == (200, 1), r.text
    csv = api.post(
        "/data",
        content=b"feature1,feature2,target\n0.5,0.7,1\n",
        headers={"content-type": "text/csv"},
    )
    assert csv.json()["accepted"] == 1
    assert post("/retrain", '{"reason": "form"}').json()["version"] == "1"
    pred = post("/predict", '{"features": {"feature1": 0.1, "feature2": -1.3}}').json()
    item = {"prediction_id": pred["prediction_id"], "label": 1}
    assert post("/feedback", json.dumps({"items": [item]})).json()["accepted"] == 1
    assert post("/models/1/promote", '{"reason": "form"}').status_code == 200
    bad = post("/data", "feature1=0.1&target=1")
    assert bad.status_code == 415
    assert "text/csv" in bad.json()["error"]
    assert "application/x-www-form-urlencoded" in bad.json()["error"]


def _utc(value: str) -> datetime:
    at = datetime.fromisoformat(value)
    assert at.utcoffset() is not None
    assert at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert abs((datetime.now(UTC) - at).total_seconds()) < 600
    return at


def test_every_time_is_iso_8601_utc(api: Api) -> None:
    """/models, /events, /data and /model-status give times in one format: ISO 8601 UTC."""
    train(api, n=500)
    models = api.get("/models").json()
    v1 = models["versions"][0]
    assert _utc(v1["created_at"]) <= _utc(v1["promoted_at"])
    assert v1["retired_at"] is None
    assert _utc(models["served"][0]["started_at"]) == _utc(v1["promoted_at"])
    assert all(_utc(e["at"]) for e in api.get("/events").json())
    data = api.get("/data").json()
    assert _utc(data["first_at"]) <= _utc(data["last_at"])
    assert _utc(api.get("/model-status").json()["champion_since"]) == _utc(v1["promoted_at"])
    promoted = api.post("/models/1/promote", json={"reason": "again"}).json()
    _utc(promoted["created_at"])
    comps = _doc(api)
    assert comps["ModelVersion"]["properties"]["created_at"] == {"type": "string"}
    assert comps["EventView"]["properties"]["at"] == {"type": "string"}


def test_bad_input_is_422_before_a_model_too(client_factory: Any) -> None:
    """With the schema configured and no model, a bad /predict body is a 422, a good one 409."""
    api = client_factory(CONTINUAL_FEATURES="feature1:numeric,feature2:numeric,target:int")
    empty = api.post("/predict", json={"rows": []})
    assert (empty.status_code, empty.json()["detail"]) == (422, {"field": "rows"})
    missing = api.post("/predict", json={"features": {"feature1": 0.1}})
    assert missing.status_code == 422
    assert "feature2" in missing.json()["error"]
    good = api.post("/predict", json={"features": {"feature1": 0.1, "feature2": 0.2}})
    assert (good.status_code, good.json()["detail"]) == (409, {"status": "no_model"})
