"""Activation functions, used inside dense/conv layers and as layers of their own.

Every derivative is computed from the activation's output y, so forward may overwrite its
input in place:
    relu        y = max(z, 0)                 dz = dy * [y > 0]
    leaky_relu  y = z if z > 0 else alpha*z   dz = dy * (1 if y > 0 else alpha)
    sigmoid     y = 1 / (1 + exp(-z))         dz = dy * y * (1 - y)
    tanh        y = tanh(z)                   dz = dy * (1 - y^2)
    softmax     y = exp(z - logsumexp(z))     dz = y * (dy - sum(dy * y))   (over axis 1)
    linear      y = z                         dz = dy
Softmax followed by cross-entropy is fused in the loss (see losses.py), which skips the
softmax Jacobian and never takes the log of a probability.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .. import validation
from ..errors import SpecError
from .base import Layer

ACTIVATIONS = ("linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax")


class Activation:
    """One activation function: `forward(z, out)` and `backward(dy, y, out)`."""

    name: ClassVar[str]

    def forward(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {}


class Linear(Activation):
    name = "linear"

    def forward(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        if out is not z:
            np.copyto(out, z)
        return out

    def backward(self, dy: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        return dy


class ReLU(Activation):
    name = "relu"

    def __init__(self) -> None:
        self._zeros: dict[tuple[tuple[int, ...], str], np.ndarray] = {}

    def forward(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        # Against an array of zeros numpy takes its vectorised path, about 3x faster than
        # against the scalar 0 (numpy 2.4).
        key = (z.shape, z.dtype.str)
        zeros = self._zeros.get(key)
        if zeros is None:
            if len(self._zeros) >= 4:
                self._zeros.clear()
            zeros = self._zeros[key] = np.zeros(z.shape, dtype=z.dtype)
        return np.maximum(z, zeros, out=out)

    def backward(self, dy: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        return np.multiply(dy, y > 0, out=out)


class LeakyReLU(Activation):
    name = "leaky_relu"

    def __init__(self, alpha: float = 0.01) -> None:
        self.alpha = validation.number(alpha, "alpha", minimum=0.0, exclusive_maximum=1.0)

    def forward(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        # max(z, alpha*z) equals leaky relu for 0 <= alpha < 1.
        scaled = np.multiply(z, self.alpha)
        return np.maximum(z, scaled, out=out)

    def backward(self, dy: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        slope = np.where(y > 0, 1.0, self.alpha).astype(dy.dtype, copy=False)
        return np.multiply(dy, slope, out=out)

    def config(self) -> dict[str, Any]:
        return {"alpha": self.alpha}


class Sigmoid(Activation):
    name = "sigmoid"

    def forward(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        # 1/(1+exp(-z)) overflows for very negative z; exp(-|z|) never does.
        e = np.exp(-np.abs(z))
        positive = z >= 0
        np.divide(1.0, 1.0 + e, out=out, where=positive)
        np.divide(e, 1.0 + e, out=out, where=~positive)
        return out

    def backward(self, dy: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.subtract(1.0, y, out=out)
        out *= y
        out *= dy
        return out


class Tanh(Activation):
    name = "tanh"

    def forward(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        return np.tanh(z, out=out)

    def backward(self, dy: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.multiply(y, y, out=out)
        np.subtract(1.0, out, out=out)
        out *= dy
        return out


class Softmax(Activation):
    name = "softmax"

    def forward(self, z: np.ndarray, out: np.ndarray) -> np.ndarray:
        return softmax(z, out=out)

    def backward(self, dy: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        inner = np.sum(dy * y, axis=1, keepdims=True)
        np.subtract(dy, inner, out=out)
        out *= y
        return out


def softmax(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Numerically stable softmax over axis 1: exp(z - max) / sum(exp(z - max))."""
    out = np.subtract(z, z.max(axis=1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Numerically stable log-softmax over axis 1: z - logsumexp(z)."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


_BY_NAME: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Linear, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax)
}


def get_activation(name: Any, field: str = "activation", *,
                   alpha: float | None = None) -> Activation:
    """The activation called `name` (one of ACTIVATIONS); `alpha` for leaky_relu only."""
    validation.choice(name, field, ACTIVATIONS)
    if alpha is None:
        return _BY_NAME[name]()
    if name != "leaky_relu":
        raise SpecError("only leaky_relu takes alpha", field="alpha", expected="no alpha",
                        received=alpha)
    return LeakyReLU(alpha)


class ActivationLayer(Layer):
    """An activation as a layer.

    {"type": "relu"} is short for {"type": "activation", "activation": "relu"}.
    """

    type_name = "activation"

    def __init__(self, activation: str = "relu", alpha: float | None = None) -> None:
        super().__init__()
        if alpha is not None and activation != "leaky_relu":
            raise SpecError(
                "only leaky_relu takes alpha", field="alpha", expected="no alpha", received=alpha
            )
        self.activation = get_activation(activation, alpha=alpha)
        self._y: np.ndarray | None = None

    def forward(self, x: np.ndarray, *, training: bool) -> np.ndarray:
        out = self._buffer("y", x.shape)
        self._y = self.activation.forward(x, out)
        return self._y

    def backward(self, dout: np.ndarray, *, need_input_grad: bool = True) -> np.ndarray | None:
        if not need_input_grad:
            return None
        if self._y is None:
            raise RuntimeError("backward called before forward")
        return self.activation.backward(dout, self._y, self._buffer("dx", dout.shape))

    def config(self) -> dict[str, Any]:
        return {"type": "activation", "activation": self.activation.name,
                **self.activation.config()}
