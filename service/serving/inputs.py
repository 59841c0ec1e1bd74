"""A prediction request's inputs checked against the model they are for."""

from __future__ import annotations

import numpy as np

from service.errors import ErrorDetail, InvalidInput

from .cache import CachedModel


def as_batch(inputs: list | np.ndarray, entry: CachedModel, max_rows: int) -> np.ndarray:
    """The inputs (nested lists, or an array) as the model's dtype, (rows, *input_shape),
    checked: at most `max_rows`
    rows, each of the model's input shape, every value finite. InvalidInput (422) otherwise."""
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
