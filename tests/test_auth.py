"""Every route the contract marks is protected; the list comes from the OpenAPI document."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api

# (method, path) that answer without a key; anything else must demand one
PUBLIC = {
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/model-status"),
    ("GET", "/metrics"),
    # the Open Inference Protocol's server probes and metadata, as its clients expect
    ("GET", "/v2"),
    ("GET", "/v2/health/live"),
    ("GET", "/v2/health/ready"),
}
EXPECTED_PROTECTED = {
    ("POST", "/predict"),
    ("POST", "/feedback"),
    ("POST", "/data"),
    ("GET", "/data"),
    ("POST", "/generate"),
    ("GET", "/features"),
    ("POST", "/check"),
    ("POST", "/retrain"),
    ("GET", "/models"),
    ("POST", "/models/{version}/promote"),
    ("POST", "/models/{version}/shadow"),
    ("POST", "/models/{version}/canary"),
    ("GET", "/trial"),
    ("POST", "/trial/end"),
    ("POST", "/trial/promote"),
    ("GET", "/events"),
    ("POST", "/v2/models/{name}/infer"),
    ("GET", "/v2/models/{name}"),
}


def operations(client: Api) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) for every operation in the OpenAPI document."""
    spec = client.get("/schema/openapi.json").json()
    return [
        (method.upper(), path, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def test_every_operation_is_public_or_demands_the_key(client_factory: Any) -> None:
    """Without a key, with a wrong key or a wrong scheme, every non-public route is 401."""
    anonymous = client_factory(auth=False)
    ops = operations(anonymous)
    protected = {(m, p) for m, p, _ in ops if (m, p) not in PUBLIC}
    assert protected >= EXPECTED_PROTECTED
    for method, path, op in ops:
        if (method, path) in PUBLIC:
            assert "security" not in op, path
            continue
        assert op["security"] == [{"BearerAuth": []}], path
        assert "401" in op["responses"], path
        url = path.replace("{version}", "1").replace("{name}", "continual")
        for headers in (
            {},
            {"authorization": "Bearer wrong-key"},
            {"authorization": "Basic dGVzdA=="},
        ):
            r = anonymous.request(method, url, headers=headers, json={})
            assert r.status_code == 401, (method, path, headers, r.text)
            assert r.json() == {"error": "missing or wrong API key", "detail": None}
            assert r.headers["www-authenticate"].startswith("Bearer")
    assert anonymous.get("/data").status_code == 401


def test_the_key_opens_protected_routes(api: Api) -> None:
    """With the right bearer key the same routes answer."""
    assert api.get("/data").status_code == 200
    assert api.get("/events").status_code == 200


def test_openapi_documents_error_codes(api: Api) -> None:
    """Each protected route documents 401; input routes document 413 and 422."""
    ops = {(m, p): op for m, p, op in operations(api)}
    for key in [
        ("POST", "/predict"),
        ("POST", "/data"),
        ("POST", "/feedback"),
        ("POST", "/generate"),
    ]:
        assert {"401", "413", "422"} <= set(ops[key]["responses"]), key
    assert {"409", "503"} <= set(ops[("POST", "/retrain")]["responses"])
    assert "404" in ops[("POST", "/models/{version}/promote")]["responses"]
    assert "503" in ops[("GET", "/ready")]["responses"]
    data = ops[("POST", "/data")]["requestBody"]["content"]
    assert set(data) == {"application/json", "text/csv"}


def test_generated_key_is_stored_owner_only(
    settings_factory: Any, client_factory: Any, tmp_path: Any
) -> None:
    """With no API_KEY a random key is generated once, kept 0600, and reused on restart."""
    settings = settings_factory(data_dir=tmp_path / "d", API_KEY="")
    first = client_factory(settings, auth=False)
    key_file = tmp_path / "d" / "api_key"
    assert first.app_.services.api_key_file == key_file
    assert key_file.stat().st_mode & 0o777 == 0o600
    key = key_file.read_text().strip()
    assert len(key) >= 32
    assert first.get("/data", headers={"authorization": f"Bearer {key}"}).status_code == 200
    again = client_factory(settings_factory(data_dir=tmp_path / "d", API_KEY=""), auth=False)
    assert again.app_.services.api_key.value == key
    assert repr(again.app_.services.api_key) == "Secret('**********')"
