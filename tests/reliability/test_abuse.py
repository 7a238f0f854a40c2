"""Bad input and abuse against the real server: auth, secrets, hostile bodies, trust.

"Nothing lost" here means: every hostile request gets a 4xx JSON error naming the
problem, stores nothing (rows and predictions counted before and after), and never
shows a secret; a model this service did not produce is never loaded.
"""

from __future__ import annotations

import contextlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from continual.web import security
from tests.receiver import Receiver
from tests.reliability.harness import RelServer, record, wait_until
from tests.test_auth import PUBLIC  # one list of the public routes


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path
) -> Iterator[dict[str, Any]]:
    """A trained server with the dashboard on and two broken alert receivers."""
    failing, hanging = Receiver("500"), Receiver("hang", hang_seconds=5)
    server = RelServer(
        tmp_path_factory.mktemp("abuse") / "data",
        {
            "CONTINUAL_DASHBOARD": "true",
            "CONTINUAL_WEBHOOK_URL": failing.url,
            "SLACK_WEBHOOK_URL": hanging.url,
            "CONTINUAL_ALERT_TIMEOUT_SECONDS": "1",
            "CONTINUAL_MAX_BODY_BYTES": "65536",
            "CONTINUAL_TRAIN_WINDOW": "600",
            # eight wrong keys to each of the ~25 protected routes: more than the 120 a
            # minute after which a client gets 429 (test_rate_limit checks that limit)
            "CONTINUAL_RATE_LIMIT_AUTH_FAILURES": "0",
        },
        template=mlflow_template,
    )
    server.start()
    try:
        with server.client() as http:
            http.post("/generate", json={"n_samples": 600, "seed": 1})
            assert http.post("/retrain").status_code == 200
        yield {"server": server, "secrets": [server.key(), failing.url, hanging.url]}
    finally:
        server.stop()
        failing.close()
        hanging.close()


def counts(server: RelServer) -> tuple[int, int]:
    """(labelled rows, predictions) in the database, predictions flushed first."""
    wait_until(lambda: _pending(server) == 0, 10, 0.1)
    with contextlib.closing(server.db()) as conn:
        rows = conn.execute("SELECT count(*) FROM labelled_rows").fetchone()[0]
        preds = conn.execute("SELECT count(*) FROM predictions").fetchone()[0]
    return int(rows), int(preds)


def _pending(server: RelServer) -> int:
    text = httpx.get(server.url + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("continual_prediction_log_pending "):
            return int(float(line.split()[1]))
    return 0


# ---- auth ------------------------------------------------------------------------------------


def test_every_protected_operation_refuses_missing_and_wrong_keys(served: dict[str, Any]) -> None:
    """From the served OpenAPI: no key, wrong key, near-miss keys, key in the URL: all 401."""
    server: RelServer = served["server"]
    key = server.key()
    spec = httpx.get(server.url + "/schema/openapi.json", timeout=10).json()
    ops = [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    mutating = [(m, p) for m, p in ops if m != "GET"]
    assert len(mutating) >= 7
    tried = 0
    for method, path in ops:
        if (method, path) in PUBLIC:
            continue
        url = server.url + path.replace("{version}", "1")
        for headers in (
            {},
            {"authorization": "Bearer wrong"},
            {"authorization": f"Bearer {key[:-1]}"},
            {"authorization": f"Bearer {key}x"},
            {"authorization": f"Bearer {key.upper()}"},
            {"authorization": f"Basic {key}"},
            {"authorization": key},
        ):
            r = httpx.request(method, url, headers=headers, json={}, timeout=10)
            assert r.status_code == 401, (method, path, r.text)
            assert r.json() == {"error": "missing or wrong API key", "detail": None}
            tried += 1
        r = httpx.request(method, url, params={"api_key": key}, json={}, timeout=10)
        assert r.status_code == 401, (method, path)
    record("auth", {"operations": len(ops), "mutating": len(mutating), "refusals": tried})


def test_the_key_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check the auth middleware runs on every protected route compares with
    hmac.compare_digest (time independent of where the keys differ)."""
    calls: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)

    class App:
        class state:  # noqa: N801 - Litestar's attribute name
            api_key_bytes = b"the-key"

    scope = {"litestar_app": App, "headers": [(b"authorization", b"Bearer not-the-key")]}
    assert security.scope_authorized(scope) is False  # type: ignore[arg-type]
    assert calls == [(b"not-the-key", b"the-key")]


# ---- secrets -----------------------------------------------------------------------------------


def test_keys_and_webhook_urls_never_show(served: dict[str, Any]) -> None:
    """Not in errors, events, status, metrics, the OpenAPI document or the dashboard's page."""
    server: RelServer = served["server"]
    with server.client() as http:
        wait_until(
            lambda: len(http.get("/events", params={"kind": "alert_failed"}).json()) >= 2, 30
        )
        texts = {
            "events": http.get("/events", params={"limit": 1000}).text,
            "models": http.get("/models").text,
            "status": http.get("/model-status").text,
            "metrics": http.get("/metrics").text,
            "openapi": http.get("/schema/openapi.json").text,
            "422": http.post("/data", json={"rows": [{"x": 1}]}).text,
            "401": httpx.post(server.url + "/data", headers={"authorization": "Bearer x"}).text,
            "dashboard": httpx.get(server.url + "/dashboard/login", timeout=30).text,
        }
    assert "alert_failed" in texts["events"]
    assert "<html" in texts["dashboard"].lower()
    tokens = [*served["secrets"], *(u.rsplit("/", 1)[-1] for u in served["secrets"][1:])]
    leaks = [(where, t[:12]) for where, text in texts.items() for t in tokens if t in text]
    log = server.log()
    leaks += [("log", t[:12]) for t in tokens if t in log]
    assert leaks == []


# ---- hostile bodies ------------------------------------------------------------------------------


def _nested(depth: int) -> bytes:
    return b'{"features": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"


HOSTILE: list[tuple[str, str, str, bytes, str, int]] = [
    # (name, path, content type, body, expected words, status)
    ("oversized body", "/data", "application/json", b'{"rows": [' + b" " * 70_000 + b"]}", "", 413),
    (
        "oversized CSV",
        "/data",
        "text/csv",
        b"feature1,feature2,target\n" + b"1,2,1\n" * 12_000,
        "",
        413,
    ),
    (
        "oversized predict",
        "/predict",
        "application/json",
        b'{"rows": [' + b" " * 70_000 + b"]}",
        "",
        413,
    ),
    ("nested predict", "/predict", "application/json", _nested(5_000), "nested", 400),
    (
        "nested data",
        "/data",
        "application/json",
        b'{"rows": [{"feature1": ' + _nested(5_000) + b"}]}",
        "nested",
        400,
    ),
    (
        "nested feedback",
        "/feedback",
        "application/json",
        b'{"items": [' + _nested(5_000) + b"]}",
        "nested",
        400,
    ),
    (
        "huge integer",
        "/data",
        "application/json",
        b'{"rows": [{"feature1": 1' + b"0" * 400 + b', "feature2": 1, "target": 1}]}',
        "too large",
        422,
    ),
    (
        "huge label",
        "/data",
        "application/json",
        b'{"rows": [{"feature1": 1, "feature2": 1, "target": 1' + b"0" * 40 + b"}]}",
        "too large",
        422,
    ),
    (
        "infinite float",
        "/data",
        "application/json",
        b'{"rows": [{"feature1": 1e999, "feature2": 1, "target": 1}]}',
        "out of range",
        422,
    ),
    (
        "huge predict",
        "/predict",
        "application/json",
        b'{"features": {"feature1": 1' + b"0" * 400 + b', "feature2": 1}}',
        "too large",
        422,
    ),
    (
        "lone surrogate",
        "/feedback",
        "application/json",
        b'{"items": [{"prediction_id": "\\ud800", "label": 1}]}',
        "",
        400,
    ),
    (
        "not UTF-8 JSON",
        "/data",
        "application/json",
        b'{"rows": [{"feature1": "\xff", "feature2": 1, "target": 1}]}',
        "UTF-8",
        400,
    ),
    ("CSV, wrong header", "/data", "text/csv", b"a,b,target\n1,2,1\n", "missing feature", 422),
    (
        "CSV, duplicate columns",
        "/data",
        "text/csv",
        b"feature1,feature1,target\n1,2,1\n",
        "duplicate",
        422,
    ),
    (
        "CSV, mixed types",
        "/data",
        "text/csv",
        b"feature1,feature2,target\n1,2,1\n1,x,0\n",
        "rows[1].feature2",
        422,
    ),
    (
        "CSV, BOM and CRLF, bad cell",
        "/data",
        "text/csv",
        "\ufefffeature1,feature2,target\r\n1,2,1\r\n1,2,x\r\n".encode(),
        "rows[1].target",
        422,
    ),
    (
        "CSV, unicode header",
        "/data",
        "text/csv",
        "feature1,température,target\n1,2,1\n".encode(),
        "feature2",
        422,
    ),
]


@pytest.mark.parametrize(
    ("name", "path", "ctype", "body", "words", "status"), HOSTILE, ids=[h[0] for h in HOSTILE]
)
def test_hostile_bodies_get_a_4xx_and_store_nothing(
    served: dict[str, Any], name: str, path: str, ctype: str, body: bytes, words: str, status: int
) -> None:
    """Oversized, deeply nested, huge numbers, bad CSV: a 4xx JSON error, nothing stored."""
    server: RelServer = served["server"]
    before = counts(server)
    with server.client() as http:
        r = http.post(path, content=body, headers={"content-type": ctype})
    assert r.status_code == status, r.text[:300]
    err = r.json()
    assert set(err) == {"error", "detail"}
    assert words.lower() in (err["error"] + json.dumps(err["detail"])).lower(), err
    assert "Traceback" not in r.text
    assert counts(server) == before


def test_rows_with_duplicate_json_keys_are_refused(served: dict[str, Any]) -> None:
    """{"feature1": 1, "feature1": 5, ...} is a duplicate column: 422, nothing stored."""
    server: RelServer = served["server"]
    before = counts(server)
    body = b'{"rows": [{"feature1": 1, "feature1": 5, "feature2": 2, "target": 1}]}'
    with server.client() as http:
        r = http.post("/data", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert "feature1" in r.text
    assert counts(server) == before


def test_huge_floats_are_refused_like_huge_integers(served: dict[str, Any]) -> None:
    """1e300 is refused as 10**300 is (it would poison every retrain): 422, nothing stored."""
    server: RelServer = served["server"]
    before = counts(server)
    with server.client() as http:
        r = http.post(
            "/data",
            content=b'{"rows": [{"feature1": 1e300, "feature2": -1e300, "target": 1}]}',
            headers={"content-type": "application/json"},
        )
    assert r.status_code == 422, r.text
    assert counts(server) == before


def test_unicode_feature_names_and_categories_round_trip(
    workdir: Path, mlflow_template: Path
) -> None:
    """Names and categorical values in any script are stored, learnt and predicted."""
    server = RelServer(
        workdir / "unicode" / "data", {"CONTINUAL_FEATURES": ""}, template=mlflow_template
    )
    cities = ["東京", "Zürich", "São Paulo", "Αθήνα", "🚲 town"]
    rows = [
        {
            "température": float(i % 30),
            "城市": cities[i % 5],
            "target": "oui" if i % 5 < 2 else "non",
        }
        for i in range(400)
    ]
    server.start()
    try:
        with server.client(timeout=300) as http:  # a first retrain on a loaded CI box
            assert http.post("/data", json={"rows": rows}).status_code == 200
            schema = http.get("/features").json()
            assert [f["name"] for f in schema["features"]] == ["température", "城市"]
            assert http.post("/retrain").status_code == 200
            p = http.post(
                "/predict", json={"features": {"température": 3.0, "城市": "東京"}}
            ).json()
            assert p["prediction"] == "oui"
            unseen = http.post("/predict", json={"features": {"température": 3.0, "城市": "🛸"}})
            assert unseen.status_code == 200
            bad = http.post(
                "/data", json={"rows": [{"température": 1.0, "城市": 3, "target": "oui"}]}
            )
            assert bad.status_code == 422
            assert "城市" in bad.json()["error"]
    finally:
        server.stop()
