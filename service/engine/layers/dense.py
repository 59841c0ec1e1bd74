"""Fully connected layer: y = activation(x @ W + b)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import validation
from ..errors import SpecError
from .base import Shape
from .dropout import bernoulli_keep_mask
from .weighted import WeightedLayer

_TRANSPOSED_DX_FROM = 1 << 16
"""Weight size from which the input gradient is computed in the transposed layout."""


class Dense(WeightedLayer):
    """y = activation(x @ W + b).

    x: (batch, in_features) -> y: (batch, units); W: (in_features, units), b: (units,).
    `max_norm` caps each unit's incoming weight vector W[:, j].

    `dropconnect` p (Wan et al. 2013): in training, y = activation(x @ (W * M) / (1 - p) + b)
    with M ~ Bernoulli(1 - p) of W's shape, drawn once per batch (one GEMM, not a weight
    matrix per sample) from the network's generator; the bias is not dropped. At inference
    y = activation(x @ W + b).
    """

    type_name = "dense"
    unit_axes = (0,)

    def __init__(
        self,
        units: int,
        activation: str = "linear",
        *,
        alpha: float | None = None,
        kernel_initializer: str | None = None,
        bias_initializer: str = "zeros",
        max_norm: float | None = None,
        use_bias: bool = True,
        dropconnect: float = 0.0,
    ) -> None:
        super().__init__(activation=activation, alpha=alpha,
                         kernel_initializer=kernel_initializer,
                         bias_initializer=bias_initializer, max_norm=max_norm, use_bias=use_bias)
        self.units = validation.integer(units, "units", minimum=1)
        self.dropconnect = validation.number(dropconnect, "dropconnect", minimum=0.0,
                                             exclusive_maximum=1.0)
        self._rng: np.random.Generator | None = None
        self._weight_mask: np.ndarray | None = None
        self._masked_weight: np.ndarray | None = None
        self._x: np.ndarray | None = None
        self._y: np.ndarray | None = None
        self._weight_t: np.ndarray | None = None

    def _build(self, input_shape: Shape, rng: np.random.Generator) -> Shape:
        if len(input_shape) != 1:
            raise SpecError(
                "dense needs a flat input; put a flatten layer before it",
                field="type",
                expected="an input of shape (features,)",
                received=list(input_shape),
            )
        fan_in = input_shape[0]
        self._rng = rng
        self._add_weight_and_bias((fan_in, self.units), self.units, fan_in=fan_in,
                                  fan_out=self.units, rng=rng)
        return (self.units,)

    def forward(self, x: np.ndarray, *, training: bool, activate: bool = True) -> np.ndarray:
        """x: (batch, in_features) -> (batch, units). `activate=False` returns x @ W + b."""
        z = self._buffer("z", (x.shape[0], self.units))
        self._weight_mask = None
        if training and self.dropconnect:
            np.matmul(x, self._drop_weights(), out=z)
        elif self._weight_t is not None and x.shape[0] == 1:
            np.matmul(x, self._weight_t.T, out=z)
        else:
            np.matmul(x, self.params["weight"], out=z)
        if self.use_bias:
            z += self.params["bias"]
        self._x = x
        self._y = self.activation.forward(z, z) if activate else z
        return self._y

    def backward(
        self, dout: np.ndarray, *, need_input_grad: bool = True, activated: bool = True
    ) -> np.ndarray | None:
        """dout: (batch, units) -> dx: (batch, in_features); fills grads["weight"], grads["bias"].

        `activated=False` treats dout as the gradient of x @ W + b (fused softmax losses).
        """
        if self._x is None or self._y is None:
            raise RuntimeError("backward called before forward")
        dz = (
            self.activation.backward(dout, self._y, self._buffer("dz", dout.shape))
            if activated else dout
        )
        np.matmul(self._x.T, dz, out=self.grads["weight"])
        if self._weight_mask is not None:
            self.grads["weight"] *= self._weight_mask
        if self.use_bias:
            np.add.reduce(dz, axis=0, out=self.grads["bias"])
        if not need_input_grad:
            return None
        batch, features = self._x.shape
        dx = self._buffer("dx", (batch, features))
        weight = self.params["weight"]
        if self._weight_mask is not None:
            assert self._masked_weight is not None  # _drop_weights sets both
            weight = self._masked_weight
        if weight.size < _TRANSPOSED_DX_FROM:
            return np.matmul(dz, weight.T, out=dx)
        # Large layers: dx = dz @ W.T computed as (W @ dz.T).T, a layout BLAS runs 15-45 %
        # faster here; the transposing copy into dx costs a few percent of the product.
        dx_t = np.matmul(weight, dz.T, out=self._buffer("dx_t", (features, batch)))
        np.copyto(dx, dx_t.T)
        return dx

    def _drop_weights(self) -> np.ndarray:
        """W * M / (1 - p), (in_features, units), with a new mask M (kept for backward)."""
        if self._rng is None:
            raise RuntimeError("dense layer used before build()")
        keep = 1.0 - self.dropconnect
        weight = self.params["weight"]
        mask = bernoulli_keep_mask(self._rng, weight.shape, keep)
        self._weight_mask = np.multiply(mask, self.dtype.type(1.0 / keep),
                                        out=self._buffer("weight_mask", weight.shape))
        self._masked_weight = np.multiply(weight, self._weight_mask,
                                          out=self._buffer("masked_weight", weight.shape))
        return self._masked_weight

    def freeze(self) -> None:
        """Inference-only: besides dropping the gradients, keep W transposed, (units,
        in_features) C-contiguous, for single rows. OpenBLAS multiplies one row by a
        cache-hot W 1.7-2.5x faster in that layout than in W's own, and a whole
        784-1024-1024-10 forward, bound by reading the weights from memory, about 10 %
        faster. Larger batches keep W's layout, which is faster for them."""
        super().freeze()
        self._weight_t = np.ascontiguousarray(self.params["weight"].T)

    def config(self) -> dict[str, Any]:
        spec = {"type": "dense", "units": self.units, **self._weighted_config()}
        if self.dropconnect:
            spec["dropconnect"] = self.dropconnect
        return spec
