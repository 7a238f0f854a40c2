"""A small typed client for scripts: sync ``Client`` and async ``AsyncClient`` (httpx).

Every API error becomes ``ApiError`` with the HTTP status and the server's message; a
request that got no answer at all (nothing listening, a timeout, a dropped connection)
becomes ``NoAnswer``, saying which.

>>> from continual.client import Client
>>> # with Client("http://127.0.0.1:8000", api_key="...") as c: c.predict({"feature1": 0.1})
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import httpx

Row = Mapping[str, Any]
JSON = dict[str, Any]


def chunk_key(index: int, chunk: bytes) -> str:
    """The Idempotency-Key of one CSV chunk: its place and a digest of its bytes, so a
    rerun after a failure skips what was stored and another file is never mistaken for it."""
    return f"csv:{index}:{hashlib.sha256(chunk).hexdigest()[:40]}"


NOT_CONTINUAL = "the answer is not continual's JSON: is something else listening there?"


class ApiError(Exception):
    """The API answered with an error status, or with something that is not its JSON."""

    def __init__(self, status: int, message: str, detail: Any = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.detail = detail


class NoAnswer(Exception):
    """The request got no answer: ``kind`` says whether nothing could be reached
    (``unreachable``), the service said nothing within ``timeout`` seconds (``timeout``),
    or the connection broke before the answer was complete (``dropped``)."""

    def __init__(
        self, url: str, kind: Literal["unreachable", "timeout", "dropped"], timeout: float | None
    ) -> None:
        super().__init__(f"no answer from {url}: {kind}")
        self.url = url
        self.kind = kind
        self.timeout = timeout


@contextmanager
def _answered(http: httpx.Client | httpx.AsyncClient) -> Iterator[None]:
    """Turn httpx's transport failures into ``NoAnswer`` (the order matters: a connect
    timeout is a timeout to httpx, but to the caller nothing was reached)."""
    url, timeout = _shown(http), http.timeout.read
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise NoAnswer(url, "unreachable", timeout) from exc
    except httpx.TimeoutException as exc:
        raise NoAnswer(url, "timeout", timeout) from exc
    except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        raise NoAnswer(url, "dropped", timeout) from exc


def _shown(http: httpx.Client | httpx.AsyncClient) -> str:
    """The service's address as a person would type it, without any user:password."""
    return str(http.base_url.copy_with(username=None, password=None)).rstrip("/")


def _timeout(seconds: float) -> httpx.Timeout:
    # an address that drops packets should not hold a command for a retrain's patience
    return httpx.Timeout(seconds, connect=min(seconds, 10.0))


_NOT_JSON = object()


def _check(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        body = _NOT_JSON
    if response.status_code >= 400:
        if isinstance(body, dict) and "error" in body:
            raise ApiError(response.status_code, str(body["error"]), body.get("detail"))
        raise ApiError(response.status_code, f"{response.reason_phrase}: {NOT_CONTINUAL}")
    if body is _NOT_JSON:
        raise ApiError(response.status_code, NOT_CONTINUAL)
    return body


def _headers(api_key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


def csv_chunks(path: Path, chunk_rows: int) -> Iterable[tuple[bytes, int]]:
    """Split a CSV file into chunks of at most ``chunk_rows`` rows, each with the header."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        chunk: list[list[str]] = []
        for row in reader:
            chunk.append(row)
            if len(chunk) >= chunk_rows:
                yield _csv_bytes(header, chunk), len(chunk)
                chunk = []
        if chunk:
            yield _csv_bytes(header, chunk), len(chunk)


def _csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


class Client:
    """Synchronous client."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers=_headers(api_key),
            timeout=_timeout(timeout),
            transport=transport,
        )

    @property
    def url(self) -> str:
        """The service's address (without any credentials in it)."""
        return _shown(self._http)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        with _answered(self._http):
            return _check(self._http.request(method, path, **kwargs))

    def _get(self, path: str, **params: Any) -> Any:
        return self._send("GET", path, params={k: v for k, v in params.items() if v is not None})

    def _post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self._send("POST", path, json=body, **kwargs)

    def health(self) -> JSON:
        """``GET /health``."""
        return dict(self._get("/health"))

    def predict(self, features: Row) -> JSON:
        """One prediction."""
        return dict(self._post("/predict", {"features": dict(features)}))

    def predict_many(self, rows: Sequence[Row]) -> JSON:
        """A batch of predictions."""
        return dict(self._post("/predict", {"rows": [dict(r) for r in rows]}))

    def feedback(
        self, items: Sequence[tuple[str, Any]], idempotency_key: str | None = None
    ) -> JSON:
        """True labels for earlier predictions."""
        body = {"items": [{"prediction_id": p, "label": lab} for p, lab in items]}
        headers = {"idempotency-key": idempotency_key} if idempotency_key else None
        return dict(self._post("/feedback", body, headers=headers))

    def ingest(self, rows: Sequence[Row], idempotency_key: str | None = None) -> JSON:
        """Labelled rows as JSON."""
        headers = {"idempotency-key": idempotency_key} if idempotency_key else None
        return dict(self._post("/data", {"rows": [dict(r) for r in rows]}, headers=headers))

    def ingest_csv(
        self, path: Path, chunk_rows: int = 10_000, progress: Callable[[int], None] | None = None
    ) -> int:
        """Upload a CSV file in chunks (each chunk keyed for safe retries); return rows stored."""
        total = 0
        for i, (chunk, n) in enumerate(csv_chunks(path, chunk_rows)):
            key = chunk_key(i, chunk)
            got = self._send(
                "POST",
                "/data",
                content=chunk,
                headers={"content-type": "text/csv", "idempotency-key": key},
            )
            total += int(got["accepted"])
            if progress is not None:
                progress(n)
        return total

    def generate(
        self, n_samples: int = 1000, n_features: int = 2, concept: int = 0, seed: int | None = None
    ) -> JSON:
        """Synthetic labelled rows."""
        body = {"n_samples": n_samples, "n_features": n_features, "concept": concept, "seed": seed}
        return dict(self._post("/generate", {k: v for k, v in body.items() if v is not None}))

    def data(self) -> JSON:
        """What is stored."""
        return dict(self._get("/data"))

    def check(self) -> JSON:
        """Run the check now."""
        return dict(self._post("/check"))

    def retrain(self, reason: str = "manual retrain") -> JSON:
        """Train a challenger now."""
        return dict(self._post("/retrain", {"reason": reason}))

    def status(self) -> JSON:
        """``GET /model-status``."""
        return dict(self._get("/model-status"))

    def models(self) -> JSON:
        """Versions with metrics and status."""
        return dict(self._get("/models"))

    def promote(self, version: str, reason: str = "manual promotion") -> JSON:
        """Make a version the champion."""
        return dict(self._post(f"/models/{version}/promote", {"reason": reason}))

    def events(self, kind: str | None = None, limit: int = 100) -> list[JSON]:
        """Events, newest first."""
        return list(self._get("/events", kind=kind, limit=limit))


class AsyncClient:
    """Asynchronous client with the same methods as ``Client``."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float = 120.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=_headers(api_key),
            timeout=_timeout(timeout),
            transport=transport,
        )

    @property
    def url(self) -> str:
        """The service's address (without any credentials in it)."""
        return _shown(self._http)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, *exc: type[BaseException] | BaseException | TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        with _answered(self._http):
            return _check(await self._http.request(method, path, **kwargs))

    async def _get(self, path: str, **params: Any) -> Any:
        return await self._send(
            "GET", path, params={k: v for k, v in params.items() if v is not None}
        )

    async def _post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return await self._send("POST", path, json=body, **kwargs)

    async def health(self) -> JSON:
        """``GET /health``."""
        return dict(await self._get("/health"))

    async def predict(self, features: Row) -> JSON:
        """One prediction."""
        return dict(await self._post("/predict", {"features": dict(features)}))

    async def predict_many(self, rows: Sequence[Row]) -> JSON:
        """A batch of predictions."""
        return dict(await self._post("/predict", {"rows": [dict(r) for r in rows]}))

    async def feedback(
        self, items: Sequence[tuple[str, Any]], idempotency_key: str | None = None
    ) -> JSON:
        """True labels for earlier predictions."""
        body = {"items": [{"prediction_id": p, "label": lab} for p, lab in items]}
        headers = {"idempotency-key": idempotency_key} if idempotency_key else None
        return dict(await self._post("/feedback", body, headers=headers))

    async def ingest(self, rows: Sequence[Row], idempotency_key: str | None = None) -> JSON:
        """Labelled rows as JSON."""
        headers = {"idempotency-key": idempotency_key} if idempotency_key else None
        return dict(await self._post("/data", {"rows": [dict(r) for r in rows]}, headers=headers))

    async def ingest_csv(
        self, path: Path, chunk_rows: int = 10_000, progress: Callable[[int], None] | None = None
    ) -> int:
        """Upload a CSV file in chunks; return rows stored."""
        total = 0
        for i, (chunk, n) in enumerate(csv_chunks(path, chunk_rows)):
            key = chunk_key(i, chunk)
            got = await self._send(
                "POST",
                "/data",
                content=chunk,
                headers={"content-type": "text/csv", "idempotency-key": key},
            )
            total += int(got["accepted"])
            if progress is not None:
                progress(n)
        return total

    async def generate(
        self, n_samples: int = 1000, n_features: int = 2, concept: int = 0, seed: int | None = None
    ) -> JSON:
        """Synthetic labelled rows."""
        body = {"n_samples": n_samples, "n_features": n_features, "concept": concept, "seed": seed}
        return dict(await self._post("/generate", {k: v for k, v in body.items() if v is not None}))

    async def data(self) -> JSON:
        """What is stored."""
        return dict(await self._get("/data"))

    async def check(self) -> JSON:
        """Run the check now."""
        return dict(await self._post("/check"))

    async def retrain(self, reason: str = "manual retrain") -> JSON:
        """Train a challenger now."""
        return dict(await self._post("/retrain", {"reason": reason}))

    async def status(self) -> JSON:
        """``GET /model-status``."""
        return dict(await self._get("/model-status"))

    async def models(self) -> JSON:
        """Versions with metrics and status."""
        return dict(await self._get("/models"))

    async def promote(self, version: str, reason: str = "manual promotion") -> JSON:
        """Make a version the champion."""
        return dict(await self._post(f"/models/{version}/promote", {"reason": reason}))

    async def events(self, kind: str | None = None, limit: int = 100) -> list[JSON]:
        """Events, newest first."""
        return list(await self._get("/events", kind=kind, limit=limit))
