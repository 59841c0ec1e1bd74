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


CHUNK = 1 << 18
"""Elements updated at a time: each chunk's temporaries stay in a 1 MiB scratch buffer (in
the L2 cache), so an update streams every parameter and gradient through memory once instead
of writing and re-reading a full-size temporary."""


class Optimizer(abc.ABC):
    """Updates `params` in place from `grads` (dicts with the same keys), chunk by chunk."""

    name: ClassVar[str]
    slots: tuple[str, ...] = ()
    """The per-parameter state arrays this optimizer keeps (e.g. momentum's velocity)."""

    def __init__(self, learning_rate: float, weight_decay: float = 0.0) -> None:
        self.learning_rate = validation.number(
            learning_rate, "learning_rate", exclusive_minimum=0.0, maximum=1e3
        )
        self.weight_decay = validation.number(weight_decay, "weight_decay", minimum=0.0,
                                              maximum=1.0)
        self.steps = 0
        self.state: dict[str, dict[str, np.ndarray]] = {slot: {} for slot in self.slots}
        self._scratch: dict[tuple[str, str], np.ndarray] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float) -> None:
        """One update of every parameter with learning rate `lr`."""
        self.steps += 1
        for key, weight in params.items():
            self._update_parameter(key, weight, grads[key], lr)

    def _update_parameter(self, key: str, weight: np.ndarray, grad: np.ndarray,
                          lr: float) -> None:
        decay = self.weight_decay if key.endswith("weight") else 0.0
        if weight.size <= CHUNK:  # one chunk: no slicing (small networks are overhead-bound)
            if decay:
                decayed = np.multiply(weight, weight.dtype.type(decay),
                                      out=self._chunk("decay", weight, weight.shape))
                grad = np.add(decayed, grad, out=decayed)
            self._update(weight, grad, {slot: self._slot(slot, key, weight)
                                        for slot in self.slots},
                         lr, self._chunk("step", weight, weight.shape))
            return
        flat_weight = weight.reshape(-1)  # parameters are contiguous: views, not copies
        flat_grad = grad.reshape(-1)
        slots = {slot: self._slot(slot, key, weight).reshape(-1) for slot in self.slots}
        for start in range(0, flat_weight.size, CHUNK):
            stop = min(start + CHUNK, flat_weight.size)
            w = flat_weight[start:stop]
            g = flat_grad[start:stop]
            if decay:  # coupled L2: g + decay * w
                g = np.multiply(w, w.dtype.type(decay), out=self._chunk("decay", w))
                g += flat_grad[start:stop]
            self._update(w, g, {slot: array[start:stop] for slot, array in slots.items()},
                         lr, self._chunk("step", w))

    @abc.abstractmethod
    def _update(self, w: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray], lr: float,
                scratch: np.ndarray) -> None:
        """Update the 1-D chunk `w` in place from its gradient `g` and state chunks;
        `scratch` is a buffer of the same size for temporaries."""

    def _chunk(self, name: str, like: np.ndarray,
               shape: tuple[int, ...] | None = None) -> np.ndarray:
        """Scratch for `like`'s elements (1-D, or `shape`), from one CHUNK-sized buffer."""
        key = (name, like.dtype.str)
        array = self._scratch.get(key)
        if array is None:
            array = self._scratch[key] = np.empty(CHUNK, dtype=like.dtype)
        scratch = array[: like.size]
        return scratch if shape is None else scratch.reshape(shape)

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
    slots: tuple[str, ...] = ("velocity",)

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
        self.slots = ("velocity",) if self.momentum else ()
        self.state = {slot: {} for slot in self.slots}

    def _update(self, w: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray], lr: float,
                scratch: np.ndarray) -> None:
        dtype = w.dtype.type
        direction = g
        if self.momentum:
            velocity = state["velocity"]
            velocity *= dtype(self.momentum)
            velocity += g
            direction = velocity
            if self.nesterov:  # g + momentum * v
                direction = np.multiply(velocity, dtype(self.momentum), out=scratch)
                direction += g
        np.multiply(direction, dtype(lr), out=scratch)
        w -= scratch

    def config(self) -> dict[str, Any]:
        return {**super().config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adagrad(Optimizer):
    name = "adagrad"
    slots = ("sum_squares",)

    def __init__(self, learning_rate: float, weight_decay: float = 0.0,
                 epsilon: float = 1e-8) -> None:
        super().__init__(learning_rate, weight_decay)
        self.epsilon = validation.number(epsilon, "epsilon", exclusive_minimum=0.0, maximum=1.0)

    def _update(self, w: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray], lr: float,
                scratch: np.ndarray) -> None:
        sum_squares = state["sum_squares"]
        np.multiply(g, g, out=scratch)
        sum_squares += scratch
        _scaled_step(w, g, sum_squares, lr, self.epsilon, scratch)

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

    def _update(self, w: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray], lr: float,
                scratch: np.ndarray) -> None:
        mean_square = state["mean_square"]
        mean_square *= w.dtype.type(self.rho)
        np.multiply(g, g, out=scratch)
        scratch *= w.dtype.type(1.0 - self.rho)
        mean_square += scratch
        _scaled_step(w, g, mean_square, lr, self.epsilon, scratch)

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

    def _update(self, w: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray], lr: float,
                scratch: np.ndarray) -> None:
        dtype = w.dtype.type
        m, v = state["m"], state["v"]
        m *= dtype(self.beta1)
        np.multiply(g, dtype(1.0 - self.beta1), out=scratch)
        m += scratch
        v *= dtype(self.beta2)
        np.multiply(g, g, out=scratch)
        scratch *= dtype(1.0 - self.beta2)
        v += scratch
        bias1 = 1.0 - self.beta1**self.steps
        bias2 = 1.0 - self.beta2**self.steps
        # w -= lr/bias1 * m / (sqrt(v)/sqrt(bias2) + eps)
        np.sqrt(v, out=scratch)
        scratch *= dtype(1.0 / np.sqrt(bias2))
        scratch += dtype(self.epsilon)
        np.divide(m, scratch, out=scratch)
        scratch *= dtype(lr / bias1)
        w -= scratch

    def config(self) -> dict[str, Any]:
        return {**super().config(), "beta1": self.beta1, "beta2": self.beta2,
                "epsilon": self.epsilon}


def _scaled_step(w: np.ndarray, g: np.ndarray, accumulator: np.ndarray, lr: float,
                 epsilon: float, scratch: np.ndarray) -> None:
    """w -= lr * g / (sqrt(accumulator) + eps), using `scratch` for the intermediate."""
    dtype = w.dtype.type
    np.sqrt(accumulator, out=scratch)
    scratch += dtype(epsilon)
    np.divide(g, scratch, out=scratch)
    scratch *= dtype(lr)
    w -= scratch


_BY_NAME: dict[str, type[Optimizer]] = {cls.name: cls for cls in (SGD, Adagrad, RMSprop, Adam)}


def build_optimizer(spec: dict[str, Any]) -> Optimizer:
    """An optimizer from {"type": "sgd", "learning_rate": 0.1, ...}; SpecError on bad fields."""
    if not isinstance(spec, dict):
        raise SpecError("invalid value", field="optimizer", expected="an object",
                        received=spec)
    kind = validation.choice(spec.get("type"), "optimizer.type", OPTIMIZERS)
    return call_with_spec(_BY_NAME[kind], spec, prefix="optimizer.")
