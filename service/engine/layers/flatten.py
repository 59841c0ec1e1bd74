"""Flatten: (batch, *shape) -> (batch, prod(shape))."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import Layer, Shape


class Flatten(Layer):
    """x: (batch, d1, d2, ...) -> (batch, d1*d2*...), C order (channels first for NCHW)."""

    type_name = "flatten"

    def _build(self, input_shape: Shape, rng: np.random.Generator) -> Shape:
        return (math.prod(input_shape),)

    def forward(self, x: np.ndarray, *, training: bool) -> np.ndarray:
        return x.reshape(x.shape[0], -1)

    def backward(self, dout: np.ndarray, *, need_input_grad: bool = True) -> np.ndarray | None:
        if not need_input_grad:
            return None
        assert self.input_shape is not None
        return dout.reshape(dout.shape[0], *self.input_shape)

    def config(self) -> dict[str, Any]:
        return {"type": "flatten"}
