"""The Open Inference Protocol (KServe V2, as MLServer and Triton speak it) over the champion.

A client written for those servers calls continual unchanged. Inputs come in either of
the protocol's two tabular forms: one tensor per feature, named after it (columns), or
one ``[N, F]`` tensor with the features in schema order (``GET /v2/models/{name}`` lists
them). Outputs: ``predict`` (labels), ``predict_proba`` (``[N, classes]``, the classes in
its ``parameters``), ``confidence`` and ``prediction_id``: each prediction is logged and
takes feedback (``POST /feedback``) like one made by ``POST /predict``.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from litestar import Response, get, post
from litestar.datastructures import State
from litestar.types import Scope

from continual import __version__
from continual.bootstrap import Services
from continual.core.errors import InvalidInput, NotFound, Unavailable
from continual.core.types import FeatureSchema, Prediction
from continual.services.predict import Scored
from continual.web.security import PROTECTED, error_responses
from continual.web.serve import CallerKey, Headers, caller_key


class InferInput(msgspec.Struct):
    """An input tensor: ``data`` flat (row-major) or nested as ``shape`` says."""

    name: str
    shape: list[int]
    datatype: str
    data: list[Any]
    parameters: dict[str, Any] | None = None


class RequestedOutput(msgspec.Struct):
    """An output the caller asks for by name."""

    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(msgspec.Struct):
    """``POST /v2/models/{name}/infer``."""

    inputs: list[InferInput]
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[RequestedOutput] | None = None


class InferOutput(msgspec.Struct, omit_defaults=True):
    """An output tensor, ``data`` flat in row-major order."""

    name: str
    shape: list[int]
    datatype: str
    data: list[Any]
    parameters: dict[str, Any] | None = None


class InferResponse(msgspec.Struct, omit_defaults=True):
    """The answer of an infer call."""

    model_name: str
    outputs: list[InferOutput]
    model_version: str | None = None
    id: str | None = None


class Ready(msgspec.Struct, omit_defaults=True):
    """A readiness answer."""

    ready: bool
    name: str | None = None


SMALL_BATCH = 16
OUTPUTS = ("predict", "predict_proba", "confidence", "prediction_id")
_decode_request = msgspec.json.Decoder(InferRequest).decode
_encode = msgspec.json.encode


def _flat(data: list[Any]) -> list[Any]:
    """Nested data (as ``shape`` says) to the flat row-major list the protocol allows."""
    while data and isinstance(data[0], list):
        if not all(isinstance(row, list) for row in data):
            raise InvalidInput(
                "inputs: data is nested unevenly (every element of a level must be a list)",
                {"field": "inputs"},
            )
        data = [v for row in data for v in row]
    return data


def _columns(req: InferRequest, schema: FeatureSchema) -> dict[str, list[Any]]:
    """The request's inputs as one list per feature (either tabular form)."""
    names = schema.names
    if not req.inputs:
        raise InvalidInput("inputs: at least one input tensor is needed", {"field": "inputs"})
    if all(i.name in names for i in req.inputs):
        return {i.name: _flat(i.data) for i in req.inputs}
    if len(req.inputs) != 1:
        raise InvalidInput(
            f"inputs: name one tensor per feature ({', '.join(names)}), or send one [N, "
            f"{len(names)}] tensor",
            {"field": "inputs"},
        )
    tensor = req.inputs[0]
    data = _flat(tensor.data)
    k = len(names)
    if len(tensor.shape) != 2 or tensor.shape[1] != k or len(data) != tensor.shape[0] * k:
        raise InvalidInput(
            f"inputs[0]: expected shape [N, {k}] with N*{k} values (features in schema order: "
            f"{', '.join(names)}); got shape {tensor.shape} with {len(data)} values",
            {"field": "inputs"},
        )
    return {name: data[j::k] for j, name in enumerate(names)}


def _check_model(svc: Services, name: str, version: str | None) -> str:
    """The champion's version, when ``name`` (and ``version``) name it; else 404."""
    if name != svc.settings.registered_model_name:
        raise NotFound(f"model {name!r} not found", {"field": "name"})
    bundle = svc.holder.current
    if bundle is None:
        raise Unavailable("no model is loaded yet: add data and retrain", {"status": "no_model"})
    if version is not None and version != bundle.version:
        raise NotFound(
            f"version {version!r} does not serve: the champion is version {bundle.version}",
            {"field": "version"},
        )
    return bundle.version


def _outputs(req: InferRequest, scored: Scored | Prediction, int_labels: bool) -> list[InferOutput]:
    """The outputs the request names (all by default), from a batch or one row."""
    wanted = [o.name for o in req.outputs] if req.outputs else list(OUTPUTS)
    unknown = [w for w in wanted if w not in OUTPUTS]
    if unknown:
        raise InvalidInput(
            f"outputs: unknown output {unknown[0]!r}; this model has {', '.join(OUTPUTS)}",
            {"field": "outputs"},
        )
    if isinstance(scored, Prediction):
        labels, ids, keys = [scored.prediction], [scored.prediction_id], list(scored.probabilities)
        proba, confidence = list(scored.probabilities.values()), [scored.confidence]
    else:
        labels, ids, keys = scored.labels, scored.ids, list(scored.bundle.model.class_keys)
        proba, confidence = scored.proba.ravel().tolist(), scored.confidence
    n = len(ids)
    made = {
        "predict": lambda: InferOutput("predict", [n], "INT64" if int_labels else "BYTES", labels),
        "predict_proba": lambda: InferOutput(
            "predict_proba", [n, len(keys)], "FP64", proba, {"classes": keys}
        ),
        "confidence": lambda: InferOutput("confidence", [n], "FP64", confidence),
        "prediction_id": lambda: InferOutput("prediction_id", [n], "BYTES", ids),
    }
    return [made[w]() for w in wanted]


def infer_answer(
    svc: Services, name: str, version: str | None, req: InferRequest, key: str | None = None
) -> InferResponse:
    """Score a V2 request with the champion (or a canary for its share of callers, unless
    the path names the version); the fast lane (``web.front``) calls it too. One row goes
    the way a single-row ``POST /predict`` does."""
    _check_model(svc, name, version)
    bundle = svc.holder.current
    assert bundle is not None  # checked just above
    started = time.perf_counter()
    pinned = version is not None
    columns = _columns(req, bundle.schema)
    n = len(next(iter(columns.values())))
    scored: Scored | Prediction
    if n <= SMALL_BATCH and any(len(c) != n for c in columns.values()):
        raise InvalidInput("inputs: every tensor must hold as many rows", {"field": "inputs"})
    if n == 1:
        one = {k: c[0] for k, c in columns.items()}
        scored = svc.predictor.predict_one(one, key, "inputs", pinned)
    elif n <= SMALL_BATCH:  # a few rows are cheaper as dicts than as a frame's arrays
        names = list(columns)
        rows = [
            dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)
        ]
        scored = svc.predictor.score(rows, "inputs", key, pinned)
    else:
        frame = svc.predictor.columns_of(columns, "inputs")
        scored = svc.predictor.score(frame, "inputs", key, pinned)
    outputs = _outputs(req, scored, bundle.schema.label_kind == "int")
    svc.observe_prediction("single" if n == 1 else "batch", time.perf_counter() - started)
    made_by = scored.model_version if isinstance(scored, Prediction) else scored.version
    return InferResponse(name, outputs, made_by, req.id)


def _path_model(path: str) -> tuple[str, str | None]:
    """``/v2/models/{name}[/versions/{v}]/infer`` to its name and version."""
    rest = path[len("/v2/models/") : -len("/infer")]
    name, _, version = rest.partition("/versions/")
    return name, version or None


async def infer_lane(svc: Services, body: bytes, scope: Scope, headers: Headers) -> bytes:
    """The fast lane of infer: decode, score, encode (any error: Litestar answers)."""
    name, version = _path_model(scope["path"])
    return _encode(infer_answer(svc, name, version, _decode_request(body), caller_key(headers)))


_INFER = {
    "status_code": 200,
    "tags": ["v2"],
    "responses": error_responses(400, 401, 404, 413, 422, 503),
    **PROTECTED,
}


@post("/v2/models/{name:str}/infer", summary="V2 infer with the champion", **_INFER)
async def infer(
    state: State, name: str, data: InferRequest, x_continual_key: CallerKey = None
) -> InferResponse:
    """Each prediction is logged and gets an id (output `prediction_id`) for feedback;
    `model_version` names the version that answered (a canary, for its share)."""
    return infer_answer(state.services, name, None, data, x_continual_key)


@post(
    "/v2/models/{name:str}/versions/{version:str}/infer",
    summary="V2 infer with a given version (the champion's)",
    **_INFER,
)
async def infer_version(state: State, name: str, version: str, data: InferRequest) -> InferResponse:
    """As `/v2/models/{name}/infer`, 404 unless `version` is the champion's."""
    return infer_answer(state.services, name, version, data)


@get("/v2", tags=["v2"], summary="V2 server metadata")
async def server_metadata() -> dict[str, Any]:
    """The server's name, version and protocol extensions."""
    return {"name": "continual", "version": __version__, "extensions": []}


@get("/v2/health/live", tags=["v2"], summary="V2 liveness (the fast lane answers it)")
async def live() -> Ready:
    """200 while the process serves."""
    return Ready(True)


@get("/v2/health/ready", tags=["v2"], summary="V2 readiness: a model is loaded")
async def ready(state: State) -> Response[Ready]:
    """200 with a champion, 503 before one."""
    ok = state.services.holder.current is not None and not state.get("shutting_down")
    return Response(Ready(ok), status_code=200 if ok else 503)


def _metadata(svc: Services, name: str, version: str | None) -> dict[str, Any]:
    current = _check_model(svc, name, version)
    bundle = svc.holder.current
    assert bundle is not None
    schema = bundle.schema
    n_classes = len(bundle.model.class_keys)
    label = "INT64" if schema.label_kind == "int" else "BYTES"
    return {
        "name": name,
        "versions": [current],
        "platform": "continual",
        "inputs": [
            {"name": f.name, "datatype": "FP64" if f.kind == "numeric" else "BYTES", "shape": [-1]}
            for f in schema.features
        ],
        "outputs": [
            {"name": "predict", "datatype": label, "shape": [-1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, n_classes]},
            {"name": "confidence", "datatype": "FP64", "shape": [-1]},
            {"name": "prediction_id", "datatype": "BYTES", "shape": [-1]},
        ],
    }


_META = {"tags": ["v2"], "responses": error_responses(401, 404, 503), **PROTECTED}


@get("/v2/models/{name:str}", summary="V2 model metadata: the live schema as inputs", **_META)
async def model_metadata(state: State, name: str) -> dict[str, Any]:
    """One input per feature (FP64 numeric, BYTES categorical), the outputs infer gives."""
    return _metadata(state.services, name, None)


@get("/v2/models/{name:str}/versions/{version:str}", summary="V2 version metadata", **_META)
async def version_metadata(state: State, name: str, version: str) -> dict[str, Any]:
    """As the model's metadata, 404 unless `version` is the champion's."""
    return _metadata(state.services, name, version)


@get("/v2/models/{name:str}/ready", summary="V2 model readiness", **_META)
async def model_ready(state: State, name: str) -> Ready:
    """200 when `name` is loaded (404 for another name, 503 before a model)."""
    _check_model(state.services, name, None)
    return Ready(True, name)


ROUTES: list[Any] = [
    infer,
    infer_version,
    server_metadata,
    live,
    ready,
    model_metadata,
    version_metadata,
    model_ready,
]
