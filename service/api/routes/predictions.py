"""POST /v1/jobs/{id}/predict: class probabilities from a trained model, cached in memory."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.serving.predict import answer

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
    return JSONResponse(await answer(state.db, state.models, job_id, request.state.owner,
                                     body.inputs, max_rows=state.settings.max_predict_rows,
                                     mc_samples=body.mc_samples, seed=body.seed,
                                     max_mc_forwards=state.settings.max_mc_forwards))
