"""Optimizers: in-place parameter updates, with per-parameter state keyed by parameter name.

With g the gradient (plus weight_decay * w for weight matrices: coupled L2, biases exempt)
and lr the learning rate of the current iteration:
    sgd      v = momentum * v + g;  w -= lr * (g + momentum * v if nesterov else v)
    adagrad  s += g^2;              w -= lr * g / (sqrt(s) + eps)
    rmsprop  s = rho s + (1-rho) g^2;  w -= lr * g / (sqrt(s) + eps)
    adam     m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
             w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
Optimizers never hold layers; `state_dict()` returns every array they keep (for checkpoints).
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import numpy as np

from . import validation
from .errors import SpecError
from .specs import call_with_spec

OPTIMIZERS = ("sgd", "adagrad", "rmsprop", "adam")


class Optimizer(abc.ABC):
    """Updates `params` in place from `grads` (dicts with the same keys)."""

    name: ClassVar[str]
    slots: ClassVar[tuple[str, ...]] = ()

    def __init__(self, learning_rate: float, weight_decay: float = 0.0) -> None:
        self.learning_rate = validation.number(
            learning_rate, "learning_rate", exclusive_minimum=0.0, maximum=1e3
        )
        self.weight_decay = validation.number(weight_decay, "weight_decay", minimum=0.0,
                                              maximum=1.0)
        self.steps = 0
        self.state: dict[str, dict[str, np.ndarray]] = {slot: {} for slot in self.slots}
        self._scratch: dict[str, np.ndarray] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float) -> None:
        """One update of every parameter with learning rate `lr`."""
        self.steps += 1
        for key, weight in params.items():
            self._update(key, weight, self._effective_grad(key, weight, grads[key]), lr)

    @abc.abstractmethod
    def _update(self, key: str, weight: np.ndarray, grad: np.ndarray, lr: float) -> None: ...

    def _effective_grad(self, key: str, weight: np.ndarray, grad: np.ndarray) -> np.ndarray:
        if self.weight_decay == 0.0 or not key.endswith("weight"):
            return grad
        decayed = np.multiply(weight, weight.dtype.type(self.weight_decay),
                              out=self._buffer("decay", key, weight))
        decayed += grad
        return decayed

    def _buffer(self, name: str, key: str, like: np.ndarray) -> np.ndarray:
        full = f"{name}/{key}"
        array = self._scratch.get(full)
        if array is None:
            array = self._scratch[full] = np.empty_like(like)
        return array

    def _slot(self, slot: str, key: str, like: np.ndarray) -> np.ndarray:
        array = self.state[slot].get(key)
        if array is None:
            array = self.state[slot][key] = np.zeros_like(like)
        return array

    def config(self) -> dict[str, Any]:
        return {"type": self.name, "learning_rate": self.learning_rate,
                "weight_decay": self.weight_decay}

    def state_dict(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able scalars, arrays keyed "slot/param")."""
        arrays = {f"{slot}/{key}": value for slot, per_key in self.state.items()
                  for key, value in per_key.items()}
        return {"steps": self.steps}, arrays

    def load_state_dict(self, scalars: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.steps = int(scalars["steps"])
        self.state = {slot: {} for slot in self.slots}
        for name, value in arrays.items():
            slot, _, key = name.partition("/")
            if slot not in self.state:
                raise ValueError(f"optimizer {self.name!r} has no state slot {slot!r}")
            self.state[slot][key] = np.array(value, copy=True)


class SGD(Optimizer):
    name = "sgd"
    slots = ("velocity",)

    def __init__(self, learning_rate: float, weight_decay: float = 0.0, momentum: float = 0.0,
                 nesterov: bool = False) -> None:
        super().__init__(learning_rate, weight_decay)
        self.momentum = validation.number(momentum, "momentum", minimum=0.0, exclusive_maximum=1.0)
        if not isinstance(nesterov, bool):
            raise SpecError("invalid value", field="nesterov", expected="a boolean",
                            received=nesterov)
        if nesterov and self.momentum == 0.0:
            raise SpecError("nesterov needs momentum", field="nesterov",
                            expected="momentum > 0 with nesterov", received=nesterov)
        self.nesterov = nesterov

    def _update(self, key: str, weight: np.ndarray, grad: np.ndarray, lr: float) -> None:
        direction = grad
        if self.momentum:
            velocity = self._slot("velocity", key, weight)
            velocity *= weight.dtype.type(self.momentum)
            velocity += grad
            direction = velocity
            if self.nesterov:
                direction = np.multiply(velocity, weight.dtype.type(self.momentum),
                                        out=self._buffer("nesterov", key, weight))
                direction += grad
        step = np.multiply(direction, weight.dtype.type(lr), out=self._buffer("step", key, weight))
        weight -= step

    def config(self) -> dict[str, Any]:
        return {**super().config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adagrad(Optimizer):
    name = "adagrad"
    slots = ("sum_squares",)

    def __init__(self, learning_rate: float, weight_decay: float = 0.0,
                 epsilon: float = 1e-8) -> None:
        super().__init__(learning_rate, weight_decay)
        self.epsilon = validation.number(epsilon, "epsilon", exclusive_minimum=0.0, maximum=1.0)

    def _update(self, key: str, weight: np.ndarray, grad: np.ndarray, lr: float) -> None:
        sum_squares = self._slot("sum_squares", key, weight)
        step = np.multiply(grad, grad, out=self._buffer("step", key, weight))
        sum_squares += step
        _scaled_step(weight, grad, sum_squares, lr, self.epsilon, step)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "epsilon": self.epsilon}


class RMSprop(Optimizer):
    name = "rmsprop"
    slots = ("mean_square",)

    def __init__(self, learning_rate: float, weight_decay: float = 0.0, rho: float = 0.9,
                 epsilon: float = 1e-8) -> None:
        super().__init__(learning_rate, weight_decay)
        self.rho = validation.number(rho, "rho", minimum=0.0, exclusive_maximum=1.0)
        self.epsilon = validation.number(epsilon, "epsilon", exclusive_minimum=0.0, maximum=1.0)

    def _update(self, key: str, weight: np.ndarray, grad: np.ndarray, lr: float) -> None:
        mean_square = self._slot("mean_square", key, weight)
        mean_square *= weight.dtype.type(self.rho)
        step = np.multiply(grad, grad, out=self._buffer("step", key, weight))
        step *= weight.dtype.type(1.0 - self.rho)
        mean_square += step
        _scaled_step(weight, grad, mean_square, lr, self.epsilon, step)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "rho": self.rho, "epsilon": self.epsilon}


class Adam(Optimizer):
    name = "adam"
    slots = ("m", "v")

    def __init__(self, learning_rate: float, weight_decay: float = 0.0, beta1: float = 0.9,
                 beta2: float = 0.999, epsilon: float = 1e-8) -> None:
        super().__init__(learning_rate, weight_decay)
        self.beta1 = validation.number(beta1, "beta1", minimum=0.0, exclusive_maximum=1.0)
        self.beta2 = validation.number(beta2, "beta2", minimum=0.0, exclusive_maximum=1.0)
        self.epsilon = validation.number(epsilon, "epsilon", exclusive_minimum=0.0, maximum=1.0)

    def _update(self, key: str, weight: np.ndarray, grad: np.ndarray, lr: float) -> None:
        dtype = weight.dtype.type
        m = self._slot("m", key, weight)
        v = self._slot("v", key, weight)
        m *= dtype(self.beta1)
        step = np.multiply(grad, dtype(1.0 - self.beta1), out=self._buffer("step", key, weight))
        m += step
        v *= dtype(self.beta2)
        np.multiply(grad, grad, out=step)
        step *= dtype(1.0 - self.beta2)
        v += step
        bias1 = 1.0 - self.beta1**self.steps
        bias2 = 1.0 - self.beta2**self.steps
        # w -= lr/bias1 * m / (sqrt(v)/sqrt(bias2) + eps)
        np.sqrt(v, out=step)
        step *= dtype(1.0 / np.sqrt(bias2))
        step += dtype(self.epsilon)
        np.divide(m, step, out=step)
        step *= dtype(lr / bias1)
        weight -= step

    def config(self) -> dict[str, Any]:
        return {**super().config(), "beta1": self.beta1, "beta2": self.beta2,
                "epsilon": self.epsilon}


def _scaled_step(weight: np.ndarray, grad: np.ndarray, accumulator: np.ndarray, lr: float,
                 epsilon: float, scratch: np.ndarray) -> None:
    """w -= lr * g / (sqrt(accumulator) + eps), using `scratch` for the intermediate."""
    dtype = weight.dtype.type
    np.sqrt(accumulator, out=scratch)
    scratch += dtype(epsilon)
    np.divide(grad, scratch, out=scratch)
    scratch *= dtype(lr)
    weight -= scratch


_BY_NAME: dict[str, type[Optimizer]] = {cls.name: cls for cls in (SGD, Adagrad, RMSprop, Adam)}


def build_optimizer(spec: dict[str, Any]) -> Optimizer:
    """An optimizer from {"type": "sgd", "learning_rate": 0.1, ...}; SpecError on bad fields."""
    if not isinstance(spec, dict):
        raise SpecError("invalid value", field="optimizer", expected="an object",
                        received=spec)
    kind = validation.choice(spec.get("type"), "optimizer.type", OPTIMIZERS)
    return call_with_spec(_BY_NAME[kind], spec, prefix="optimizer.")
