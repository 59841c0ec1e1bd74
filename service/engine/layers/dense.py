"""Fully connected layer: y = activation(x @ W + b)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import initializers, validation
from ..errors import SpecError
from .activations import get_activation
from .base import Layer, Shape


class Dense(Layer):
    """y = activation(x @ W + b).

    x: (batch, in_features) -> y: (batch, units); W: (in_features, units), b: (units,).
    `max_norm` c, when set, rescales each unit's incoming weight vector W[:, j] to norm <= c after
    every update (Srivastava et al. 2014 pair it with dropout).
    """

    type_name = "dense"

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
    ) -> None:
        super().__init__()
        self.units = validation.integer(units, "units", minimum=1)
        kwargs = {} if alpha is None else {"alpha": alpha}
        if alpha is not None and activation != "leaky_relu":
            raise SpecError("only leaky_relu takes alpha", field="alpha", expected="no alpha",
                            received=alpha)
        self.activation = get_activation(activation, **kwargs)
        self.kernel_initializer = validation.choice(
            kernel_initializer or initializers.default_for(activation),
            "kernel_initializer",
            initializers.INITIALIZERS,
        )
        self.bias_initializer = validation.choice(
            bias_initializer, "bias_initializer", initializers.INITIALIZERS
        )
        self.max_norm = (
            None if max_norm is None
            else validation.number(max_norm, "max_norm", exclusive_minimum=0.0)
        )
        if not isinstance(use_bias, bool):
            raise SpecError("invalid value", field="use_bias", expected="a boolean",
                            received=use_bias)
        self.use_bias = use_bias
        self._x: np.ndarray | None = None
        self._y: np.ndarray | None = None

    def _build(self, input_shape: Shape, rng: np.random.Generator) -> Shape:
        if len(input_shape) != 1:
            raise SpecError(
                "dense needs a flat input; put a flatten layer before it",
                field="type",
                expected="an input of shape (features,)",
                received=list(input_shape),
            )
        fan_in = input_shape[0]
        self._add_parameter("weight", self.kernel_initializer, (fan_in, self.units),
                            fan_in=fan_in, fan_out=self.units, rng=rng)
        if self.use_bias:
            self._add_parameter("bias", self.bias_initializer, (self.units,), fan_in=fan_in,
                                fan_out=self.units, rng=rng)
        return (self.units,)

    def forward(self, x: np.ndarray, *, training: bool, activate: bool = True) -> np.ndarray:
        """x: (batch, in_features) -> (batch, units). `activate=False` returns x @ W + b."""
        z = self._buffer("z", (x.shape[0], self.units))
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
        if self.use_bias:
            np.sum(dz, axis=0, out=self.grads["bias"])
        if not need_input_grad:
            return None
        dx = self._buffer("dx", self._x.shape)
        return np.matmul(dz, self.params["weight"].T, out=dx)

    def apply_constraints(self) -> None:
        if self.max_norm is None:
            return
        weight = self.params["weight"]
        norms = np.sqrt(np.sum(weight * weight, axis=0))
        scale = np.minimum(1.0, self.max_norm / np.maximum(norms, 1e-12)).astype(weight.dtype)
        weight *= scale

    def config(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "type": "dense",
            "units": self.units,
            "activation": self.activation.name,
            **self.activation.config(),
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            "use_bias": self.use_bias,
        }
        if self.max_norm is not None:
            spec["max_norm"] = self.max_norm
        return spec
