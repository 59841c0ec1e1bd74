"""WeightedLayer: what dense and conv2d share (weights, bias, activation, max-norm)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .. import initializers, validation
from ..errors import SpecError
from .activations import get_activation
from .base import ActivatedLayer


class WeightedLayer(ActivatedLayer):
    """A layer computing activation(x * W + b) for some product `*`.

    Validates the arguments both share; `max_norm` c, when set, rescales each unit's incoming
    weight vector (the weight's `unit_axes`) to norm <= c after every update, as Srivastava et
    al. (2014) pair it with dropout.
    """

    unit_axes: ClassVar[tuple[int, ...]]
    """The weight's axes that hold one unit's incoming weights."""

    def __init__(self, *, activation: str, alpha: float | None, kernel_initializer: str | None,
                 bias_initializer: str, max_norm: float | None, use_bias: bool) -> None:
        super().__init__()
        if alpha is not None and activation != "leaky_relu":
            raise SpecError("only leaky_relu takes alpha", field="alpha", expected="no alpha",
                            received=alpha)
        self.activation = get_activation(activation, alpha=alpha)
        self.kernel_initializer = validation.choice(
            kernel_initializer or initializers.default_for(activation), "kernel_initializer",
            initializers.INITIALIZERS)
        self.bias_initializer = validation.choice(bias_initializer, "bias_initializer",
                                                  initializers.INITIALIZERS)
        self.max_norm = (None if max_norm is None
                         else validation.number(max_norm, "max_norm", exclusive_minimum=0.0))
        if not isinstance(use_bias, bool):
            raise SpecError("invalid value", field="use_bias", expected="a boolean",
                            received=use_bias)
        self.use_bias = use_bias

    def _add_weight_and_bias(self, weight_shape: tuple[int, ...], units: int, *, fan_in: int,
                             fan_out: int, rng: np.random.Generator) -> None:
        """params["weight"] of `weight_shape` and, with use_bias, params["bias"] of (units,)."""
        self._add_parameter("weight", self.kernel_initializer, weight_shape, fan_in=fan_in,
                            fan_out=fan_out, rng=rng)
        if self.use_bias:
            self._add_parameter("bias", self.bias_initializer, (units,), fan_in=fan_in,
                                fan_out=fan_out, rng=rng)

    def apply_constraints(self) -> None:
        if self.max_norm is None:
            return
        weight = self.params["weight"]
        norms = np.sqrt(np.sum(weight * weight, axis=self.unit_axes, keepdims=True))
        weight *= np.minimum(1.0, self.max_norm / np.maximum(norms, 1e-12)).astype(weight.dtype)

    def _weighted_config(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "activation": self.activation.name,
            **self.activation.config(),
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            "use_bias": self.use_bias,
        }
        if self.max_norm is not None:
            spec["max_norm"] = self.max_norm
        return spec
