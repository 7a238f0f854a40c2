"""Authenticated data routes: predict, feedback, data, generate, features."""

from __future__ import annotations

import asyncio
import functools
import json
import secrets
import time
from collections.abc import Callable, Sized
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Request, get, post
from litestar.datastructures import State
from litestar.exceptions import ClientException, HTTPException
from litestar.params import Parameter

from continual.bootstrap import Services
from continual.core.errors import InvalidInput, NotFound, PayloadTooLarge
from continual.core.frame import Frame
from continual.core.schema import validate_unlabelled
from continual.core.types import FeatureSchema, Prediction
from continual.services.ingest import FeedbackResult, IngestResult
from continual.web.openapi import DataOperation
from continual.web.rowtype import column_decoder, row_decoder
from continual.web.schemas import (
    BatchPredictions,
    ColumnarPredictions,
    DataRequest,
    DataResponse,
    FeedbackRequest,
    GenerateRequest,
    GenerateResponse,
    PredictRequest,
)
from continual.web.security import PROTECTED, error_responses
from continual.web.views import DataView, data_view

_T = TypeVar("_T")
THREAD_ROWS = 1000  # batches above this are scored off the event loop
IdempotencyKey = Annotated[
    str | None,
    Parameter(
        header="Idempotency-Key",
        required=False,
        min_length=1,  # an empty key would make every later empty-key batch a "duplicate"
        max_length=128,
        description="Retry-safe batches: a key seen before stores nothing again",
    ),
]
CallerKey = Annotated[
    str | None,
    Parameter(
        header="X-Continual-Key",
        required=False,
        min_length=1,
        max_length=200,
        description="Who is asking: a canary answers the same key with the same version",
    ),
]
_data_decoder = msgspec.json.Decoder(DataRequest)


def _refuse_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise InvalidInput(f"rows: duplicate column {key!r} in a row", {"field": key})
        seen[key] = value
    return seen


def _refuse_duplicate_keys(body: bytes, members: int) -> None:
    """msgspec keeps the last of two equal keys; a duplicate column must be refused.

    Every object member has one ``:`` outside strings, and colons inside strings only raise
    the raw count, so equal counts prove there is no duplicate at the cost of a byte scan;
    only a body with more colons than ``members`` (what it decoded to) is parsed again,
    slowly, to name the column.
    """
    if body.count(b":") > members:
        json.loads(body, object_pairs_hook=_refuse_pairs)


def _json_rows(body: bytes, ctype: str) -> DataRequest:
    """The body as JSON rows, whatever its label: ``curl -d`` labels JSON as a form, and
    every other JSON route takes it so. A body that is not JSON is malformed (400) if it
    claims to be JSON, else of a type we do not take (415)."""
    try:
        return _data_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"body: {exc}", {"field": "rows"}) from None
    except msgspec.DecodeError as exc:
        if ctype in ("application/json", "") or ctype.endswith("+json"):
            raise ClientException(f"JSON is malformed: {exc}") from None
        raise HTTPException(
            f"unsupported content type {ctype!r} and the body is not JSON: send JSON or text/csv",
            status_code=415,
        ) from None


def _check_before_a_model(svc: Services, data: PredictRequest) -> None:
    """Bad input is a 422 whether or not a model is loaded yet (the 409 comes after)."""
    schema = svc.ingest.known_schema()
    if schema is not None and data.columns is None:
        one = data.features is not None
        rows = [data.features] if data.features is not None else data.rows or []
        validate_unlabelled(
            rows, schema, svc.settings.max_batch_rows, "features" if one else "rows"
        )


Answer = Prediction | BatchPredictions | ColumnarPredictions


async def answer_predict(svc: Services, data: PredictRequest, key: str | None = None) -> Answer:
    """What ``POST /predict`` answers; the fast lane (``web.front``) calls it too.

    ``key``: the caller's ``X-Continual-Key`` (a canary's share is sticky by it)."""
    given = (data.features is not None) + (data.rows is not None) + (data.columns is not None)
    if given != 1:
        raise InvalidInput(
            "body: send exactly one of `features`, `rows` or `columns`", {"field": "features"}
        )
    if svc.holder.current is None:
        _check_before_a_model(svc, data)
    started = time.perf_counter()
    if data.features is not None and data.output == "rows":
        one = svc.predictor.predict_one(data.features, key=key)
        svc.observe_prediction("single", time.perf_counter() - started)
        return one
    batch: list[dict[str, Any]] | Frame
    if data.columns is not None:
        batch = svc.predictor.columns_of(data.columns)
    else:
        batch = [data.features] if data.features is not None else data.rows or []
    return await answer_batch(svc, batch, data.output, key, started)


async def answer_batch(
    svc: Services, batch: list[dict[str, Any]] | Frame, output: str, key: str | None, started: float
) -> Answer:
    """A batch's answer, as rows or as columns (``output``); its latency is observed from
    ``started``."""
    if output == "columns":
        scored = await _off_loop(functools.partial(svc.predictor.score, key=key), batch)
        out: Answer = ColumnarPredictions(scored.version, scored.columns())
    else:
        version, rows = await _off_loop(functools.partial(svc.predictor.predict, key=key), batch)
        out = BatchPredictions(version, rows)
    svc.observe_prediction("batch", time.perf_counter() - started)
    return out


_decode_predict = msgspec.json.Decoder(PredictRequest).decode
_encode = msgspec.json.Encoder().encode
Headers = dict[bytes, bytes]  # as web.front reads them (web never imports a sibling's types)


async def predict_lane(svc: Services, body: bytes, _scope: Any, headers: Headers) -> bytes:
    """The fast lane of ``POST /predict`` (``web.front``): any error, Litestar answers. A
    columnar batch is checked as it is decoded, against the champion's schema."""
    key = caller_key(headers)
    bundle = svc.holder.current
    if bundle is not None and b'"columns"' in body:
        started = time.perf_counter()
        typed = column_decoder(bundle.schema).decode(body, svc.settings.max_batch_rows)
        if typed is not None:
            return _encode(await answer_batch(svc, typed.frame, typed.output, key, started))
    return _encode(await answer_predict(svc, _decode_predict(body), key))


def caller_key(headers: Headers) -> str | None:
    """The ``X-Continual-Key`` header of a request, if any (as the route would take it:
    a key out of bounds is left to Litestar, which answers the 400)."""
    value = headers.get(b"x-continual-key")
    if value is None:
        return None
    if not 1 <= len(value) <= 200:
        raise ValueError("X-Continual-Key out of bounds")
    return value.decode("latin-1")


async def _off_loop(fn: Callable[[Any], _T], batch: Sized) -> _T:
    """Large batches are scored in a thread, so the event loop keeps serving."""
    if len(batch) > THREAD_ROWS:
        return await asyncio.to_thread(fn, batch)
    return fn(batch)


@post(
    "/predict",
    status_code=200,
    tags=["serve"],
    summary="Predict one row (`features`) or a batch (`rows` or `columns`)",
    responses=error_responses(400, 401, 409, 413, 422, 503),
    **PROTECTED,
)
async def predict(state: State, data: PredictRequest, x_continual_key: CallerKey = None) -> Answer:
    """Score with the current champion (or a canary, for its share of callers); every
    prediction gets an id for feedback, and the answer names the version that made it."""
    return await answer_predict(state.services, data, x_continual_key)


@post(
    "/feedback",
    status_code=200,
    tags=["serve"],
    summary="True labels of earlier predictions, by prediction id",
    responses=error_responses(400, 401, 409, 413, 422),
    **PROTECTED,
)
async def feedback(
    state: State, data: FeedbackRequest, idempotency_key: IdempotencyKey = None
) -> FeedbackResult:
    """Unknown ids are reported in `unknown`; ids that already had feedback in `duplicate`."""
    svc: Services = state.services
    items = [(item.prediction_id, item.label) for item in data.items]
    return await asyncio.to_thread(svc.ingest.feedback, items, idempotency_key)


def _add_json(svc: Services, body: bytes, ctype: str, key: str | None) -> IngestResult:
    """JSON rows, off the event loop (decoding 10,000 rows takes ~15 ms): checked against
    the fixed schema while decoded, or else by the general path, which names what is bad."""
    schema = svc.ingest.known_schema()
    typed = None if schema is None else row_decoder(schema)
    batch = None if typed is None else typed.decode(body)
    if batch is not None:
        _refuse_duplicate_keys(body, 1 + len(batch.labels) * (len(batch.names) + 1))
        return svc.ingest.add_checked(batch, key)
    parsed = _json_rows(body, ctype)
    _refuse_duplicate_keys(body, 1 + sum(len(row) for row in parsed.rows))
    return svc.ingest.add_rows(parsed.rows, "data", key)


@post(
    "/data",
    status_code=200,
    tags=["data"],
    summary='Store labelled rows: JSON `{"rows": [...]}` or `text/csv` with a header row',
    responses=error_responses(400, 401, 409, 413, 422),
    operation_class=DataOperation,
    **PROTECTED,
)
async def add_data(
    state: State, request: Request[Any, Any, Any], idempotency_key: IdempotencyKey = None
) -> DataResponse:
    """All or nothing: a batch with one bad row stores nothing."""
    svc: Services = state.services
    body = await request.body()
    if len(body) > svc.settings.max_body_bytes:
        raise PayloadTooLarge("body: over the size limit", {"limit": svc.settings.max_body_bytes})
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype in ("text/csv", "application/csv"):
        result = await asyncio.to_thread(svc.ingest.add_csv, body, idempotency_key)
    else:
        result = await asyncio.to_thread(_add_json, svc, body, ctype, idempotency_key)
    return DataResponse(result.accepted, result.scored_by, result.correct, result.duplicate)


@get(
    "/data",
    tags=["data"],
    summary="What is stored: rows, label counts, first and last arrival",
    responses=error_responses(401),
    **PROTECTED,
)
async def data_summary(state: State) -> DataView:
    """Counts over the whole store."""
    svc: Services = state.services
    return data_view(await asyncio.to_thread(svc.reads.summary))


@post(
    "/generate",
    status_code=200,
    tags=["data"],
    summary="Store synthetic labelled rows; switch `concept` to simulate drift",
    responses=error_responses(400, 401, 413, 422),
    **PROTECTED,
)
async def generate(state: State, data: GenerateRequest) -> GenerateResponse:
    """make_classification rows `feature1..N` with label `target`; same concept and seed, same rows."""
    svc: Services = state.services
    most = svc.settings.max_generate_rows
    if data.n_samples > most:
        raise InvalidInput(
            f"n_samples: at most {most} (CONTINUAL_MAX_GENERATE_ROWS)", {"field": "n_samples"}
        )
    seed = data.seed if data.seed is not None else secrets.randbelow(2**31)
    result = await asyncio.to_thread(
        svc.ingest.generate, data.n_samples, data.n_features, data.concept, seed
    )
    return GenerateResponse(
        result.accepted, data.concept, seed, data.n_features, result.scored_by, result.correct
    )


@get(
    "/features",
    tags=["data"],
    summary="The feature schema (fixed by config or by the first data)",
    responses=error_responses(401, 404),
    **PROTECTED,
)
async def features(state: State) -> FeatureSchema:
    """404 until the first data or the configuration fixes it."""
    svc: Services = state.services
    # once fixed the schema never changes: only the first read goes to the database
    schema = svc.ingest.known_schema() or await asyncio.to_thread(svc.ingest.schema)
    if schema is None:
        raise NotFound("no feature schema yet: send data first or set CONTINUAL_FEATURES", None)
    return schema


ROUTES: list[Any] = [predict, feedback, add_data, data_summary, generate, features]
