"""The Open Inference Protocol's HTTP routes: server health and metadata (open, like
/healthz), and per model (a job: the caller's key and its owner, as on /v1) metadata,
readiness and inference.

    GET  /v2                                           server metadata
    GET  /v2/health/live, /v2/health/ready             200 true, 400 false
    GET  /v2/models/{job_id}[/versions/1]              model metadata
    GET  /v2/models/{job_id}[/versions/1]/ready        200 once the job has a trained model
    POST /v2/models/{job_id}[/versions/1]/infer        inference (JSON or binary tensors)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from service import __version__
from service.errors import ErrorDetail, NotFound
from service.serving.cache import CachedModel
from service.serving.predict import answer, model_for

from .. import readiness
from ..deps import AppState, Owner, StateDep, authorize
from .inference import VERSION, encode, read
from .schemas import (
    INPUT_NAME,
    InferenceResponse,
    MetadataTensor,
    ModelMetadata,
    ModelReadiness,
    ProtocolError,
    ServerLiveness,
    ServerMetadata,
    ServerReadiness,
)
from .tensors import DETERMINISTIC_OUTPUTS, HEADER_LENGTH, OUTPUT_DATATYPES, UNCERTAINTY_OUTPUTS

PLATFORM = "dropnet_numpy"
EXTENSIONS = ["binary_tensor_data"]
_DATATYPES = {"float32": "FP32", "float64": "FP64"}
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProtocolError, "description": description} for status, description in (
        (400, "an invalid request: the message names the field and the rule"),
        (401, "no valid API key"), (404, "no such model (or not the caller's)"),
        (409, "the job has no trained model yet"))}

router = APIRouter(prefix="/v2", tags=["inference protocol (v2)"])
models = APIRouter(prefix="/v2/models/{model_name}", tags=["inference protocol (v2)"],
                   dependencies=[Depends(authorize)], responses=_ERRORS)


@router.get("", response_model=ServerMetadata)
async def server_metadata() -> ServerMetadata:
    """The server's name, version and protocol extensions."""
    return ServerMetadata(name="dropnet", version=__version__, extensions=EXTENSIONS)


@router.get("/health/live", response_model=ServerLiveness)
async def server_live() -> ServerLiveness:
    """The server answers."""
    return ServerLiveness(live=True)


@router.get("/health/ready", response_model=ServerReadiness, responses={
    400: {"model": ServerReadiness, "description": "not ready: the database does not answer "
                                                   "or its schema is not at the head"}})
async def server_ready(state: StateDep, response: Response) -> ServerReadiness:
    """Ready to serve models: the database answers and its schema is at the migrations'
    head (training workers are /readyz's concern). The protocol's false is a 4xx: 400."""
    ready = readiness.passed(await run_in_threadpool(readiness.database_checks, state.db))
    response.status_code = 200 if ready else 400
    return ServerReadiness(ready=ready)


@models.get("", response_model=ModelMetadata)
async def model_metadata(model_name: str, state: StateDep, owner: Owner) -> ModelMetadata:
    """The model's input (`input`, [-1, *input_shape], the model's float type) and outputs."""
    return _metadata(model_name, await model_for(state.db, state.models, model_name, owner))


@models.get("/versions/{model_version}", response_model=ModelMetadata)
async def model_version_metadata(model_name: str, model_version: str, state: StateDep,
                                 owner: Owner) -> ModelMetadata:
    """The metadata of the model's version "1" (its only one)."""
    _check_version(model_name, model_version)
    return await model_metadata(model_name, state, owner)


@models.get("/ready", response_model=ModelReadiness)
async def model_ready(model_name: str, state: StateDep, owner: Owner) -> ModelReadiness:
    """200 once the job has a trained model; 409 before (the protocol's false is a 4xx)."""
    await model_for(state.db, state.models, model_name, owner)
    return ModelReadiness(name=model_name, ready=True)


@models.get("/versions/{model_version}/ready", response_model=ModelReadiness)
async def model_version_ready(model_name: str, model_version: str, state: StateDep,
                              owner: Owner) -> ModelReadiness:
    """The readiness of the model's version "1" (its only one)."""
    _check_version(model_name, model_version)
    return await model_ready(model_name, state, owner)


_INFER_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/InferenceRequest"}}}}}
_INFER_ANSWER: dict[int | str, dict[str, Any]] = {200: {"content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary", "description": (
        "with binary outputs: the JSON InferenceResponse (Inference-Header-Content-Length "
        "bytes), then each binary output's bytes")}}}}}


@models.post("/infer", response_model=InferenceResponse, responses=_INFER_ANSWER,
             openapi_extra=_INFER_BODY)
async def infer(model_name: str, request: Request) -> Response:
    """Classes and probabilities for the input's rows, as /v1/jobs/{id}/predict answers
    them; `parameters` {"mc_samples", "seed"} for MC dropout and its uncertainty outputs."""
    state: AppState = request.app.state.dropnet
    inference = read(await request.body(), request.headers.get(HEADER_LENGTH))
    result = await answer(state.db, state.models, model_name, request.state.owner,
                          inference.batch, max_rows=state.settings.max_predict_rows,
                          mc_samples=inference.mc_samples, seed=inference.seed,
                          max_mc_forwards=state.settings.max_mc_forwards)
    content, headers = encode(model_name, inference, result)
    return Response(content, headers=headers)


@models.post("/versions/{model_version}/infer", response_model=InferenceResponse,
             responses=_INFER_ANSWER, openapi_extra=_INFER_BODY)
async def infer_version(model_name: str, model_version: str, request: Request) -> Response:
    """Inference with the model's version "1" (its only one)."""
    _check_version(model_name, model_version)
    return await infer(model_name, request)


def _metadata(model_name: str, entry: CachedModel) -> ModelMetadata:
    network = entry.network
    classes = list(network.output_shape)
    shapes = {"probabilities": [-1, *classes], "predictions": [-1], "entropy": [-1],
              "mutual_information": [-1], "std": [-1, *classes]}
    return ModelMetadata(
        name=model_name, versions=[VERSION], platform=PLATFORM,
        inputs=[MetadataTensor(name=INPUT_NAME, datatype=_DATATYPES[network.dtype.name],
                               shape=[-1, *network.input_shape])],
        outputs=[MetadataTensor(name=name, datatype=OUTPUT_DATATYPES[name], shape=shapes[name])
                 for name in DETERMINISTIC_OUTPUTS + UNCERTAINTY_OUTPUTS])


def _check_version(model_name: str, model_version: str) -> None:
    if model_version != VERSION:
        raise NotFound(f"model {model_name!r} has no version {model_version[:40]!r}", [
            ErrorDetail("model_version", "a job's model has one version",
                        expected=repr(VERSION), received=model_version[:40])])
