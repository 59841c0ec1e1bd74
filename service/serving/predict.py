"""Class probabilities from a job's trained model: small batches inline, large ones in chunks.

An answer is {"predictions": [rows] class indices, "probabilities": [rows][classes] floats},
plus "class_names": [classes] (each class's name by index) when the model's training data
named its classes (image folders).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from anyio import to_thread

from service.engine.uncertainty import mc_dropout_predict
from service.errors import ErrorDetail, InvalidInput
from service.store.session import Database

from . import loading
from .cache import PREDICT_ROWS, CachedModel, ModelCache
from .inputs import as_batch

INLINE_ROWS = PREDICT_ROWS
"""Batches up to this size may be predicted on the event loop (faster than a thread hop)."""
MC_CHUNK_ROWS = 1024
"""Stacked rows (samples x inputs) per MC-dropout forward: bounds the buffers a cached model
keeps."""
MAX_MC_FORWARDS = 1_000_000
"""Default limit of rows x mc_samples in one request (Settings.max_mc_forwards)."""


async def model_for(db: Database, cache: ModelCache, job_id: str, owner: str) -> CachedModel:
    """The owner's job's model: cached while fresh, else loaded or revalidated in a worker
    thread. NotFound for a job that is not the owner's, Conflict while it has no model."""
    entry = loading.cached(cache, job_id, owner)
    if entry is None or not cache.fresh(entry):
        entry = await to_thread.run_sync(loading.load, db, cache, job_id, owner, entry)
    return entry


async def answer(db: Database, cache: ModelCache, job_id: str, owner: str,
                 inputs: list | np.ndarray, *,
                 max_rows: int, mc_samples: int = 0, seed: int = 0,
                 max_mc_forwards: int = MAX_MC_FORWARDS) -> dict[str, Any]:
    """The answer for `inputs` (rows, *input_shape) from the owner's job's model (`model_for`);
    the inputs checked (InvalidInput); a small batch predicted right here on the event loop,
    a large one (or one whose model is busy) in a worker thread. With `mc_samples` T > 0:
    T stochastic forwards per row in a worker thread, at most `max_mc_forwards` rows x T."""
    entry = await model_for(db, cache, job_id, owner)
    batch = as_batch(inputs, entry, max_rows)
    if mc_samples > 0:
        if len(batch) * mc_samples > max_mc_forwards:
            raise InvalidInput("too many Monte-Carlo forwards", [ErrorDetail(
                "mc_samples", "rows x mc_samples exceeds this server's limit", type="limit",
                expected=f"rows x mc_samples at most {max_mc_forwards}",
                received=len(batch) * mc_samples)])
        return await to_thread.run_sync(predict_mc, entry, batch, mc_samples, seed)
    result = predict_inline(entry, batch)
    if result is None:
        result = await to_thread.run_sync(predict, entry, batch)
    return result


def predict_inline(entry: CachedModel, inputs: np.ndarray) -> dict[str, list] | None:
    """The answer for a small batch computed by the caller itself, on the event loop (cheaper
    than a thread hop), or None when the batch is large or the model is busy in another
    thread: then `predict` it in a worker thread."""
    if len(inputs) > INLINE_ROWS or not entry.lock.acquire(blocking=False):
        return None
    try:
        return _answer(entry, entry.network.predict_proba(inputs))
    finally:
        entry.lock.release()


def predict(entry: CachedModel, inputs: np.ndarray) -> dict[str, list]:
    """The answer for `inputs` (rows, *input_shape), waiting for the model if it is busy."""
    # In chunks: buffers sized for a whole large batch would stay with the cached model.
    with entry.lock:
        return _answer(entry, entry.network.predict_proba(inputs, batch_size=PREDICT_ROWS))


def predict_mc(entry: CachedModel, inputs: np.ndarray, samples: int,
               seed: int) -> dict[str, Any]:
    """MC-dropout answer: the mean's class and probabilities, plus per-row entropy, mutual
    information and per-class standard deviation over `samples` forwards."""
    with entry.lock:
        try:
            result = mc_dropout_predict(entry.network, inputs, samples=samples, seed=seed,
                                        max_chunk_rows=MC_CHUNK_ROWS)
        except ValueError as error:  # a network without softmax outputs
            raise InvalidInput("this model cannot give MC-dropout uncertainty", [ErrorDetail(
                "mc_samples", str(error), expected="0 for this model")]) from error
    return _with_class_names(entry, {
        "predictions": result.predicted.tolist(), "probabilities": result.mean.tolist(),
        "mc_samples": samples, "entropy": result.entropy.tolist(),
        "mutual_information": result.mutual_information.tolist(), "std": result.std.tolist()})


def _answer(entry: CachedModel, probabilities: np.ndarray) -> dict[str, list]:
    probabilities = probabilities.astype(np.float64)
    return _with_class_names(entry, {"predictions": probabilities.argmax(axis=1).tolist(),
                                     "probabilities": probabilities.tolist()})


def _with_class_names(entry: CachedModel, answer: dict[str, Any]) -> dict[str, Any]:
    if entry.class_names is not None:
        answer["class_names"] = entry.class_names
    return answer
