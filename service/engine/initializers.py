"""Weight initializers: `initialize(name, shape, fan_in, fan_out, rng, dtype)`.

    he_normal       N(0, 2 / fan_in)
    he_uniform      U(-sqrt(6 / fan_in), sqrt(6 / fan_in))
    glorot_uniform  U(-sqrt(6 / (fan_in + fan_out)), sqrt(6 / (fan_in + fan_out)))
    zeros           0
"""

from __future__ import annotations

import math

import numpy as np

INITIALIZERS = ("he_normal", "he_uniform", "glorot_uniform", "zeros")


def default_for(activation: str) -> str:
    """He initialisation for rectifiers, Glorot for everything else."""
    return "he_normal" if activation in ("relu", "leaky_relu") else "glorot_uniform"


def initialize(
    name: str,
    shape: tuple[int, ...],
    *,
    fan_in: int,
    fan_out: int,
    rng: np.random.Generator,
    dtype: np.dtype,
) -> np.ndarray:
    """A new array of `shape` drawn from the initializer `name`."""
    if name == "zeros":
        return np.zeros(shape, dtype=dtype)
    if name == "he_normal":
        return (rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(dtype)
    if name == "he_uniform":
        limit = math.sqrt(6.0 / fan_in)
    elif name == "glorot_uniform":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
    else:
        raise ValueError(f"unknown initializer {name!r}; expected one of {INITIALIZERS}")
    return rng.uniform(-limit, limit, shape).astype(dtype)
