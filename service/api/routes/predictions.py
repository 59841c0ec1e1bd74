"""POST /v1/jobs/{id}/predict: class probabilities from a trained model, cached in memory."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from service.serving import loading
from service.serving.inputs import as_batch
from service.serving.predict import predict as predict_batch
from service.serving.predict import predict_inline

from ..deps import AppState
from ..schemas.errors import responses
from ..schemas.predictions import PredictRequest, PredictResponse

router = APIRouter(prefix="/v1/jobs/{job_id}", tags=["predictions"])


@router.post("/predict", response_model=PredictResponse, responses=responses(401, 404, 409, 422))
async def predict(job_id: str, body: PredictRequest, request: Request) -> JSONResponse:
    """Predicted classes and probabilities for a batch of inputs. 409 while the job has no
    trained model."""
    # The hottest route: state and owner straight from the request (set by `authorize`),
    # since every dependency FastAPI resolves costs tens of microseconds.
    state: AppState = request.app.state.dropnet
    owner: str = request.state.owner
    entry = loading.cached(state.models, job_id, owner)
    if entry is None or not state.models.fresh(entry):
        entry = await run_in_threadpool(loading.load, state.db, state.models, job_id, owner,
                                        entry)
    inputs = as_batch(body.inputs, entry, state.settings.max_predict_rows)
    answer = predict_inline(entry, inputs)
    if answer is None:
        answer = await run_in_threadpool(predict_batch, entry, inputs)
    return JSONResponse(answer)
