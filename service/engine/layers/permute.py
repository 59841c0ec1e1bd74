"""Permute: reorder the axes of each sample, as Keras's Permute layer does."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import SpecError
from .base import Layer, Shape


class Permute(Layer):
    """y = x.transpose(0, *dims): `dims` numbers the sample axes from 1 (the batch axis is 0).

    x: (batch, d1, ..., dk) -> y: (batch, d[dims[0]], ..., d[dims[k-1]]). E.g. dims [3, 1, 2]
    turns channels-last images (batch, H, W, C) into NCHW (batch, C, H, W), and [2, 3, 1]
    turns them back. The output is a C-contiguous copy (the convolution's im2col reads it).
    """

    type_name = "permute"

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        if (not isinstance(dims, (list, tuple)) or not dims
                or not all(isinstance(d, int) and not isinstance(d, bool) for d in dims)
                or sorted(dims) != list(range(1, len(dims) + 1))):
            raise SpecError("invalid value", field="dims",
                            expected="a permutation of 1..k, k the number of sample axes "
                                     "(e.g. [3, 1, 2])", received=dims)
        self.dims = [int(d) for d in dims]
        self._axes = (0, *self.dims)
        self._inverse = (0, *(int(i) + 1 for i in np.argsort(self.dims)))

    def _build(self, input_shape: Shape, rng: np.random.Generator) -> Shape:
        if len(self.dims) != len(input_shape):
            raise SpecError("dims must name every sample axis once", field="dims",
                            expected=f"a permutation of 1..{len(input_shape)} for input "
                                     f"{list(input_shape)}", received=self.dims)
        return tuple(input_shape[d - 1] for d in self.dims)

    def forward(self, x: np.ndarray, *, training: bool) -> np.ndarray:
        """x: (batch, *input_shape) -> (batch, *output_shape), a layer buffer."""
        assert self.output_shape is not None
        y = self._buffer("y", (x.shape[0], *self.output_shape))
        np.copyto(y, x.transpose(self._axes))
        return y

    def backward(self, dout: np.ndarray, *, need_input_grad: bool = True) -> np.ndarray | None:
        """dout: (batch, *output_shape) -> dx: (batch, *input_shape), the inverse permutation."""
        if not need_input_grad:
            return None
        assert self.input_shape is not None
        dx = self._buffer("dx", (dout.shape[0], *self.input_shape))
        np.copyto(dx, dout.transpose(self._inverse))
        return dx

    def config(self) -> dict[str, Any]:
        return {"type": "permute", "dims": list(self.dims)}
