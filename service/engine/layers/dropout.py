"""Dropout layers: inverted dropout, spatial (channel) dropout and Gaussian dropout.

All act on the layer's input, which is the previous layer's *activated* output, so a dropped
unit outputs exactly 0 whatever its activation. At inference every one is the identity.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import validation
from ..errors import SpecError
from .base import Layer, Shape

_LEVELS = 2**16


def bernoulli_keep_mask(rng: np.random.Generator, shape: Shape, keep: float) -> np.ndarray:
    """A boolean array of `shape`, each entry True with probability `keep`.

    Draws 16 random bits per entry straight from the bit generator (four entries per 64-bit
    draw, about 4x faster than drawing floats), so `keep` is resolved to 2**-16: the
    probability used is round(keep * 65536) / 65536, within 8e-6 of `keep`.
    """
    count = math.prod(shape)
    threshold = round(keep * _LEVELS)
    bits = rng.bit_generator.random_raw((count + 3) // 4).view(np.uint16)[:count]
    if threshold >= _LEVELS:  # a rate below 2**-17 rounds to "keep everything"
        return np.ones(shape, dtype=bool)
    return (bits < np.uint16(threshold)).reshape(shape)


class DropoutBase(Layer):
    """A layer with a dropout `rate` in [0, 1) that schedules may change between iterations."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self._rate = validation.number(rate, "rate", minimum=0.0, exclusive_maximum=1.0)
        self.base_rate = self._rate
        self.rng: np.random.Generator | None = None
        self._scaled_mask: np.ndarray | None = None

    @property
    def rate(self) -> float:
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        self._rate = validation.number(value, "rate", minimum=0.0, exclusive_maximum=1.0)

    def _build(self, input_shape: Shape, rng: np.random.Generator) -> Shape:
        self.rng = rng
        return input_shape

    def forward(self, x: np.ndarray, *, training: bool) -> np.ndarray:
        """Training: y = x * noise (noise drawn anew); inference: y = x."""
        if not training or self._rate == 0.0:
            self._scaled_mask = None
            return x
        if self.rng is None:
            raise RuntimeError("dropout layer used before build()")
        self._scaled_mask = self._draw_noise(x.shape)
        return np.multiply(x, self._scaled_mask, out=self._buffer("y", x.shape))

    def backward(self, dout: np.ndarray, *, need_input_grad: bool = True) -> np.ndarray | None:
        """dx = dout * the same noise as the last forward; dout unchanged after inference."""
        if not need_input_grad:
            return None
        if self._scaled_mask is None:
            return dout
        return np.multiply(dout, self._scaled_mask, out=self._buffer("dx", dout.shape))

    def _draw_noise(self, shape: Shape) -> np.ndarray:
        """The multiplicative noise for an input of `shape` (broadcastable to it)."""
        raise NotImplementedError

    def _scaled_bernoulli(self, noise_shape: Shape) -> np.ndarray:
        keep = 1.0 - self._rate
        assert self.rng is not None
        mask = bernoulli_keep_mask(self.rng, noise_shape, keep)
        return np.multiply(mask, self.dtype.type(1.0 / keep), out=self._buffer("mask", noise_shape))

    def config(self) -> dict[str, Any]:
        return {"type": self.type_name, "rate": self.base_rate}


class Dropout(DropoutBase):
    """Inverted dropout: y = x * mask / (1 - rate), mask ~ Bernoulli(1 - rate).

    x: (batch, ...) -> same shape. `noise_shape` (as in Keras) is the mask's shape including the
    batch axis, broadcast against the input; None entries take the input's size, e.g.
    [null, 1, null, null] shares one mask across the channels of NCHW input.
    """

    type_name = "dropout"

    def __init__(self, rate: float, noise_shape: list[int | None] | None = None) -> None:
        super().__init__(rate)
        if noise_shape is not None and (
            not isinstance(noise_shape, (list, tuple))
            or not all(d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 1)
                       for d in noise_shape)
        ):
            raise SpecError("invalid value", field="noise_shape",
                            expected="a list of positive integers or nulls", received=noise_shape)
        self.noise_shape = None if noise_shape is None else list(noise_shape)

    def _build(self, input_shape: Shape, rng: np.random.Generator) -> Shape:
        if self.noise_shape is not None:
            full = (None, *input_shape)
            if len(self.noise_shape) != len(full):
                raise SpecError(
                    "noise_shape must have one entry per input axis, batch axis included",
                    field="noise_shape", expected=f"{len(full)} entries",
                    received=self.noise_shape,
                )
            for axis, (noise, size) in enumerate(zip(self.noise_shape, full, strict=True)):
                if noise is not None and noise != 1 and (size is None or noise != size):
                    raise SpecError(
                        f"noise_shape[{axis}] must be null, 1 or the input's size",
                        field="noise_shape",
                        expected=f"null, 1 or {size if size is not None else 'the batch size'}",
                        received=noise,
                    )
        return super()._build(input_shape, rng)

    def _draw_noise(self, shape: Shape) -> np.ndarray:
        if self.noise_shape is None:
            return self._scaled_bernoulli(shape)
        noise_shape = tuple(
            size if noise is None else noise
            for noise, size in zip(self.noise_shape, shape, strict=True)
        )
        return self._scaled_bernoulli(noise_shape)

    def config(self) -> dict[str, Any]:
        spec = super().config()
        if self.noise_shape is not None:
            spec["noise_shape"] = self.noise_shape
        return spec


class SpatialDropout2D(DropoutBase):
    """Drops whole channels: x: (batch, C, H, W), mask: (batch, C, 1, 1) ~ Bernoulli(1 - rate)."""

    type_name = "spatial_dropout2d"

    def _build(self, input_shape: Shape, rng: np.random.Generator) -> Shape:
        if len(input_shape) != 3:
            raise SpecError(
                "spatial_dropout2d needs image input (channels, height, width)",
                field="type", expected="an input of shape (C, H, W)", received=list(input_shape),
            )
        return super()._build(input_shape, rng)

    def _draw_noise(self, shape: Shape) -> np.ndarray:
        return self._scaled_bernoulli((shape[0], shape[1], 1, 1))


class GaussianDropout(DropoutBase):
    """Multiplicative Gaussian noise: y = x * n, n ~ N(1, rate / (1 - rate)) in training."""

    type_name = "gaussian_dropout"

    def _draw_noise(self, shape: Shape) -> np.ndarray:
        assert self.rng is not None
        stddev = math.sqrt(self._rate / (1.0 - self._rate))
        noise = self._buffer("mask", shape)
        self.rng.standard_normal(shape, dtype=self.dtype.type, out=noise)
        noise *= self.dtype.type(stddev)
        noise += self.dtype.type(1.0)
        return noise
