"""Class probabilities from a job's trained model: small batches inline, large ones in chunks.

An answer is {"predictions": [rows] class indices, "probabilities": [rows][classes] floats}.
"""

from __future__ import annotations

import numpy as np
from anyio import to_thread

from service.store.session import Database

from . import loading
from .cache import PREDICT_ROWS, CachedModel, ModelCache
from .inputs import as_batch

INLINE_ROWS = PREDICT_ROWS
"""Batches up to this size may be predicted on the event loop (faster than a thread hop)."""


async def answer(db: Database, cache: ModelCache, job_id: str, owner: str, inputs: list, *,
                 max_rows: int) -> dict[str, list]:
    """The answer for `inputs` (rows, *input_shape) from the owner's job's model: cached while
    fresh, else loaded or revalidated in a worker thread (NotFound, Conflict without a model);
    the inputs checked (InvalidInput); a small batch predicted right here on the event loop,
    a large one (or one whose model is busy) in a worker thread."""
    entry = loading.cached(cache, job_id, owner)
    if entry is None or not cache.fresh(entry):
        entry = await to_thread.run_sync(loading.load, db, cache, job_id, owner, entry)
    batch = as_batch(inputs, entry, max_rows)
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
        return _answer(entry.network.predict_proba(inputs))
    finally:
        entry.lock.release()


def predict(entry: CachedModel, inputs: np.ndarray) -> dict[str, list]:
    """The answer for `inputs` (rows, *input_shape), waiting for the model if it is busy."""
    # In chunks: buffers sized for a whole large batch would stay with the cached model.
    with entry.lock:
        return _answer(entry.network.predict_proba(inputs, batch_size=PREDICT_ROWS))


def _answer(probabilities: np.ndarray) -> dict[str, list]:
    probabilities = probabilities.astype(np.float64)
    return {"predictions": probabilities.argmax(axis=1).tolist(),
            "probabilities": probabilities.tolist()}
