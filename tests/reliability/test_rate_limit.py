"""Rate limits on the write routes and on failed authentication, behind a proxy too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from continual.core.ratelimit import Buckets, client_address, parse_networks
from tests.reliability.harness import RelServer, record, rows_of


def test_a_bucket_allows_bursts_then_the_sustained_rate() -> None:
    """60 a minute: a burst of 10 at once, then one a second; each client has its own."""
    now = [0.0]
    buckets = Buckets(60, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(10)] == [0.0] * 10
    assert buckets.take("a") == pytest.approx(1.0)
    assert buckets.take("b") == 0.0
    now[0] += 1.0
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    assert Buckets(0).take("a") == 0.0  # 0 turns a limit off


def test_buckets_forget_the_least_recent_clients_first() -> None:
    """Memory is bounded: at most ``max_clients`` buckets are kept."""
    buckets = Buckets(60, max_clients=3, clock=lambda: 0.0)
    for client in "abcd":
        buckets.take(client)
    assert list(buckets._state) == ["b", "c", "d"]


def _scope(peer: str, forwarded: str | None = None) -> Any:
    headers = [] if forwarded is None else [(b"x-forwarded-for", forwarded.encode())]
    return {"type": "http", "client": (peer, 1234), "headers": headers}


def test_forwarded_addresses_are_believed_only_from_trusted_proxies() -> None:
    """X-Forwarded-For counts only when the peer is a configured proxy; spoofs are ignored."""
    trusted = parse_networks(["10.0.0.0/8", "::1"])
    assert client_address(_scope("203.0.113.9", "1.2.3.4"), trusted) == "203.0.113.9"
    assert client_address(_scope("10.0.0.2", "198.51.100.7"), trusted) == "198.51.100.7"
    # the client may prepend anything; the right-most untrusted hop is the one the proxy saw
    assert client_address(_scope("10.0.0.2", "6.6.6.6, 198.51.100.7"), trusted) == "198.51.100.7"
    assert client_address(_scope("10.0.0.2", "198.51.100.7, 10.0.0.9"), trusted) == "198.51.100.7"
    assert client_address(_scope("10.0.0.2", "not an address"), trusted) == "10.0.0.2"
    assert client_address(_scope("10.0.0.2"), trusted) == "10.0.0.2"
    assert client_address(_scope("10.0.0.2", "198.51.100.7"), ()) == "10.0.0.2"


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, mlflow_template: Path) -> Any:
    """A server with 60 writes a minute per client and 12 failed authentications."""
    server = RelServer(
        tmp_path_factory.mktemp("limits") / "data",
        {"CONTINUAL_RATE_LIMIT_WRITES": "60", "CONTINUAL_RATE_LIMIT_AUTH_FAILURES": "12"},
        template=mlflow_template,
    )
    server.start()
    yield server
    server.stop()


def test_writes_over_the_limit_get_429_with_retry_after(limited: RelServer) -> None:
    """A burst of writes: the first 10 pass, then 429 + Retry-After; reads and predictions pass."""
    statuses = []
    with limited.client() as http:
        for batch in range(15):
            r = http.post("/data", json={"rows": rows_of(batch, 5)})
            statuses.append(r.status_code)
        refused = r
        reads = [http.get("/data").status_code for _ in range(15)]
    assert statuses[:10] == [200] * 10
    assert statuses[10:] == [429] * 5
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"].startswith("rate limit exceeded: 60 requests a minute")
    assert reads == [200] * 15
    record("rate limit: writes", {"sent": 15, "accepted": statuses.count(200), "refused": 5})


def test_failed_authentication_is_limited_per_client(limited: RelServer) -> None:
    """After 12 wrong keys, this client's protected requests get 429, even with the key."""
    wrong = [
        httpx.get(limited.url + "/events", headers={"authorization": "Bearer nope"}).status_code
        for _ in range(14)
    ]
    assert wrong[:12] == [401] * 12
    assert wrong[12:] == [429, 429]
    with limited.client() as http:
        assert http.get("/events").status_code == 429
        assert http.get("/health").status_code == 200  # public routes are not limited


def test_a_spoofed_forwarded_for_does_not_buy_a_new_budget(limited: RelServer) -> None:
    """No proxy configured: X-Forwarded-For is ignored, so a spent budget stays spent."""
    with limited.client() as http:
        for batch in range(12):  # spend this client's write budget (whatever is left of it)
            http.post("/data", json={"rows": rows_of(batch, 2)})
        r = http.post(
            "/data", json={"rows": rows_of(99, 2)}, headers={"x-forwarded-for": "10.9.9.9"}
        )
    assert r.status_code == 429


def test_behind_a_trusted_proxy_each_client_has_its_own_budget(
    workdir: Path, mlflow_template: Path
) -> None:
    """With 127.0.0.1 as a trusted proxy, X-Forwarded-For names the client: separate budgets."""
    env = {"CONTINUAL_RATE_LIMIT_WRITES": "30", "CONTINUAL_TRUSTED_PROXIES": "127.0.0.1"}
    server = RelServer(workdir / "proxy" / "data", env, template=mlflow_template)
    server.start()
    try:
        with server.client() as http:
            first = [
                http.post(
                    "/data", json={"rows": rows_of(b, 2)}, headers={"x-forwarded-for": "10.1.1.1"}
                ).status_code
                for b in range(6)
            ]
            other = http.post(
                "/data", json={"rows": rows_of(99, 2)}, headers={"x-forwarded-for": "10.2.2.2"}
            ).status_code
    finally:
        server.stop()
    assert first == [200] * 5 + [429]
    assert other == 200


def test_every_route_that_stores_or_changes_something_is_a_write_route() -> None:
    """The write budget covers every POST route but the predicting ones (as routed)."""
    import re

    from continual.web import admin, serve, v2
    from continual.web.ratelimit import WRITE_ROUTES, predicts

    posts = {
        re.sub(r"{(\w+):\w+}", r"{\1}", path)
        for handler in [*serve.ROUTES, *admin.ROUTES, *v2.ROUTES]
        if "POST" in handler.http_methods
        for path in handler.paths
    }
    predicting = {p for p in posts if predicts(p)}
    assert predicting == {
        "/predict",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
    }
    assert posts - predicting == WRITE_ROUTES


def test_v2_infer_spends_the_predict_budget(workdir: Path, mlflow_template: Path) -> None:
    """One budget for /predict and V2 infer: past it both get 429 with Retry-After, and the
    OpenAPI document says so for each."""
    env = {"CONTINUAL_RATE_LIMIT_PREDICT": "60"}  # a burst of 10
    server = RelServer(workdir / "predict-limit" / "data", env, template=mlflow_template)
    server.start()
    body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]}
    try:
        with server.client() as http:
            infer = [
                http.post("/v2/models/continual/infer", json=body).status_code for _ in range(11)
            ]
            limited = http.post("/predict", json={"features": {"a": 1.0}})
            spec = http.get("/schema/openapi.json").json()
    finally:
        server.stop()
    assert 429 not in infer[:10]
    assert infer[10] == 429
    assert limited.status_code == 429
    assert float(limited.headers["retry-after"]) > 0
    for path in ("/predict", "/v2/models/{name}/infer"):
        assert "429" in spec["paths"][path]["post"]["responses"], path
