"""POST /v1/jobs/{id}/predict: class probabilities from a trained model, cached in memory."""

from __future__ import annotations

import time

import numpy as np
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.engine.checkpoint import load_model
from service.errors import Conflict, ErrorDetail, InvalidInput, NotFound
from service.jobs import lifecycle
from service.store.models import TrainedModel

from ..deps import AppState
from ..model_cache import PREDICT_ROWS, CachedModel, model_bytes
from ..schemas.errors import responses
from ..schemas.predictions import PredictRequest, PredictResponse

router = APIRouter(prefix="/v1/jobs/{job_id}", tags=["predictions"])

INLINE_ROWS = PREDICT_ROWS
"""Batches up to this size are predicted on the event loop (faster than a thread hop)."""


@router.post("/predict", response_model=PredictResponse, responses=responses(401, 404, 409, 422))
async def predict(job_id: str, body: PredictRequest, request: Request) -> JSONResponse:
    """Predicted classes and probabilities for a batch of inputs. 409 while the job has no
    trained model."""
    # The hottest route: state and owner straight from the request (set by `authorize`),
    # since every dependency FastAPI resolves costs tens of microseconds.
    state: AppState = request.app.state.dropnet
    owner: str = request.state.owner
    entry = state.models.get(job_id)
    if entry is None or (entry.owner == owner and not state.models.fresh(entry)):
        entry = await run_in_threadpool(_load, state, job_id, owner, entry)
    elif entry.owner != owner:
        raise NotFound(f"no job with id {job_id!r}")
    inputs = as_batch(body.inputs, entry, state.settings.max_predict_rows)
    answer = predict_inline(entry, inputs)
    if answer is None:
        answer = await run_in_threadpool(_predict, entry, inputs)
    return JSONResponse(answer)


def predict_inline(entry: CachedModel, inputs: np.ndarray) -> dict[str, list] | None:
    """The answer for a small batch computed right here on the event loop (cheaper than a
    thread hop), or None when the batch is large or the model is busy in another thread."""
    if len(inputs) > INLINE_ROWS or not entry.lock.acquire(blocking=False):
        return None
    try:
        return _answer(entry.network.predict_proba(inputs))
    finally:
        entry.lock.release()


def _answer(probabilities: np.ndarray) -> dict[str, list]:
    probabilities = probabilities.astype(np.float64)
    return {"predictions": probabilities.argmax(axis=1).tolist(),
            "probabilities": probabilities.tolist()}


def _load(state: AppState, job_id: str, owner: str, cached: CachedModel | None) -> CachedModel:
    """The job's model from the database, or `cached` (the caller's own) once the database
    confirms that its job and model still exist; a deleted job's model leaves the cache."""
    with state.db.read() as session:
        try:
            job = lifecycle.get_owned(session, job_id, owner)
        except NotFound:
            if cached is not None:  # the owner's own job: deleted by another API process
                state.models.discard(job_id)
            raise
        if cached is not None:
            if _has_model(session, job_id):
                cached.checked_at = time.monotonic()
                return cached
            state.models.discard(job_id)
        model = session.get(TrainedModel, job_id)
        if model is None:
            raise Conflict(f"job {job_id} is {job.status} and has no trained model yet")
        data = model.data
    network, _ = load_model(data)
    network.freeze()
    entry = CachedModel(job_id=job_id, owner=owner, network=network,
                        nbytes=model_bytes(network))
    state.models.put(entry)
    return entry


def _has_model(session: Session, job_id: str) -> bool:
    found = session.scalar(select(TrainedModel.job_id).where(TrainedModel.job_id == job_id))
    return found is not None


def as_batch(inputs: list, entry: CachedModel, max_rows: int) -> np.ndarray:
    """The inputs as the model's dtype, checked: row count, shape, finite values."""
    if len(inputs) > max_rows:
        raise InvalidInput("too many inputs", [ErrorDetail(
            "inputs", "too many rows in one request", type="limit",
            expected=f"at most {max_rows} rows", received=len(inputs))])
    expected = entry.network.input_shape
    try:
        with np.errstate(over="ignore"):  # too large for the dtype: refused as non-finite
            batch = np.asarray(inputs, dtype=entry.network.dtype)
    except ValueError:
        batch = None
    if batch is None or batch.shape[1:] != expected:
        shape = list(batch.shape[1:]) if batch is not None else "ragged rows"
        raise InvalidInput("inputs do not match the model's input shape", [ErrorDetail(
            "inputs", "each input must have the model's input shape",
            expected=f"samples of shape {list(expected)}", received=shape)])
    if not np.isfinite(batch).all():
        raise InvalidInput("inputs must be finite", [ErrorDetail(
            "inputs", "NaN or infinite values (or values too large for the model's dtype)",
            type="not_finite")])
    return batch


def _predict(entry: CachedModel, inputs: np.ndarray) -> dict[str, list]:
    # In chunks: buffers sized for a whole large batch would stay with the cached model.
    with entry.lock:
        return _answer(entry.network.predict_proba(inputs, batch_size=PREDICT_ROWS))
