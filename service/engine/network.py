"""Network: a stack of layers built from layer dicts, with forward, backward and state."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import validation
from .errors import SpecError
from .layers import (
    ACTIVATIONS,
    LAYER_TYPES,
    ActivatedLayer,
    ActivationLayer,
    DropoutBase,
    Layer,
    MaxPool2D,
)
from .specs import call_with_spec

DTYPES = ("float32", "float64")
MAX_INPUT_RANK = 3


class Network:
    """A feed-forward stack of built layers sharing one random generator.

    Parameter and gradient keys are "layers.{i}.weight" and "layers.{i}.bias", with i the
    layer's index in the layers list.
    """

    def __init__(self, layers: Sequence[Layer], input_shape: tuple[int, ...],
                 rng: np.random.Generator, dtype: np.dtype) -> None:
        self.layers = list(layers)
        self.input_shape = tuple(input_shape)
        last = self.layers[-1].output_shape if self.layers else None
        self.output_shape: tuple[int, ...] = self.input_shape if last is None else last
        self.rng = rng
        self.dtype = np.dtype(dtype)
        self._params = {f"layers.{i}.{key}": value for i, layer in enumerate(self.layers)
                        for key, value in layer.params.items()}
        self._grads = {f"layers.{i}.{key}": value for i, layer in enumerate(self.layers)
                       for key, value in layer.grads.items()}
        with_params = [i for i, layer in enumerate(self.layers) if layer.params]
        self._first_trainable = with_params[0] if with_params else len(self.layers)
        self.dropout_layers = [layer for layer in self.layers if isinstance(layer, DropoutBase)]
        # Max-poolings that apply the derivative of the activation before them (see
        # MaxPool2D): the layer before then takes its gradient as not `activated`.
        self._folded_pools = {
            i for i, (before, layer) in enumerate(itertools.pairwise(self.layers), start=1)
            if isinstance(layer, MaxPool2D) and isinstance(before, ActivatedLayer)
            and before.activation.name != "softmax"
        }
        self.frozen = False

    # -- structure -------------------------------------------------------------------------

    @property
    def ends_in_softmax(self) -> bool:
        """Whether the final activation is softmax (required by the fused cross-entropy)."""
        if not self.layers:
            return False
        activation = getattr(self.layers[-1], "activation", None)
        return activation is not None and activation.name == "softmax"

    def parameter_count(self) -> int:
        return sum(value.size for value in self._params.values())

    def architecture(self) -> dict[str, Any]:
        """What rebuilds this network: {"input_shape", "dtype", "layers"}."""
        return {"input_shape": list(self.input_shape), "dtype": self.dtype.name,
                "layers": [layer.config() for layer in self.layers]}

    # -- computation -----------------------------------------------------------------------

    def forward(self, x: np.ndarray, *, training: bool, logits: bool = False) -> np.ndarray:
        """x: (batch, *input_shape) -> (batch, *output_shape).

        `logits=True` stops before the final softmax (for the fused cross-entropy loss).
        The result is a layer's buffer, valid until the next forward: copy it to keep it.
        """
        if training:
            self._check_trainable()
        self._check_input(x)
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if logits and i == last:
                x = self._final_logits(layer, x, training)
            else:
                x = layer.forward(x, training=training)
        return x

    def backward(self, dout: np.ndarray, *, logits: bool = False,
                 need_input_grad: bool = False) -> np.ndarray | None:
        """dout: (batch, *output_shape), the loss gradient of the outputs (of the logits when
        `logits`). Fills every layer's grads; returns dx only when `need_input_grad`.
        Layers below the first one with parameters are skipped unless dx is needed."""
        self._check_trainable()
        last = len(self.layers) - 1
        stop = 0 if need_input_grad else self._first_trainable
        grad = dout
        for i in range(last, -1, -1):
            layer = self.layers[i]
            need = need_input_grad or i > stop
            if logits and i == last:
                if isinstance(layer, ActivationLayer):
                    continue
                dx = self._final_logits_layer(layer).backward(grad, need_input_grad=need,
                                                              activated=False)
            elif i in self._folded_pools:
                pool, before = layer, self.layers[i - 1]
                assert isinstance(pool, MaxPool2D) and isinstance(before, ActivatedLayer)
                dx = pool.backward(grad, need_input_grad=need, activation=before.activation)
            elif i + 1 in self._folded_pools:
                assert isinstance(layer, ActivatedLayer)
                dx = layer.backward(grad, need_input_grad=need, activated=False)
            else:
                dx = layer.backward(grad, need_input_grad=need)
            if dx is None:
                return None
            grad = dx
        return grad

    def _final_logits(self, layer: Layer, x: np.ndarray, training: bool) -> np.ndarray:
        if not self.ends_in_softmax:
            raise ValueError("logits=True needs a network whose final activation is softmax")
        if isinstance(layer, ActivationLayer):
            return x
        return self._final_logits_layer(layer).forward(x, training=training, activate=False)

    @staticmethod
    def _final_logits_layer(layer: Layer) -> ActivatedLayer:
        """The final layer as one whose softmax the fused loss may skip."""
        if not isinstance(layer, ActivatedLayer):
            raise ValueError(f"logits=True needs a final layer with an activation; received "
                             f"{type(layer).__name__}")
        return layer

    def predict_proba(self, x: np.ndarray, *, batch_size: int = 1024) -> np.ndarray:
        """Inference-mode outputs (class probabilities for softmax networks), in batches.

        x: (N, *input_shape) -> (N, *output_shape), a new array.
        """
        self._check_input(x)
        result = np.empty((x.shape[0], *self.output_shape), dtype=self.dtype)
        for start in range(0, x.shape[0], batch_size):
            stop = start + batch_size
            result[start:stop] = self.forward(x[start:stop], training=False)
        return result

    def predict(self, x: np.ndarray, *, batch_size: int = 1024) -> np.ndarray:
        """Predicted class indices (N,)."""
        return np.argmax(self.predict_proba(x, batch_size=batch_size), axis=1)

    def apply_constraints(self) -> None:
        for layer in self.layers:
            layer.apply_constraints()

    def freeze(self) -> None:
        """Make the network inference-only, as a served model is: the gradient arrays and
        training buffers are freed, and dense layers keep a transposed copy of their weights
        for single-row inputs (see Dense.freeze). The bytes allocated stay the same, but the
        resident size grows by the dense weights: a network that never trained has not
        touched its gradient arrays. Training forwards and backward raise RuntimeError
        afterwards; load_state_dict keeps the copies current."""
        for layer in self.layers:
            layer.freeze()
        self._grads = {}
        self.frozen = True

    def _check_trainable(self) -> None:
        if self.frozen:
            raise RuntimeError("expected a trainable network, received one frozen for "
                               "inference (build or load a new one to train)")

    def _check_input(self, x: np.ndarray) -> None:
        if not isinstance(x, np.ndarray) or x.shape[1:] != self.input_shape or x.ndim < 2:
            shape = getattr(x, "shape", type(x).__name__)
            raise ValueError(
                f"expected input of shape (batch, {', '.join(map(str, self.input_shape))}); "
                f"received {shape}"
            )

    # -- state -----------------------------------------------------------------------------

    def parameters(self) -> dict[str, np.ndarray]:
        """The live parameter arrays (updated in place by optimizers)."""
        return self._params

    def grads(self) -> dict[str, np.ndarray]:
        """The live gradient arrays from the last backward, same keys as parameters()."""
        return self._grads

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter, keyed "layers.{i}.weight" / "layers.{i}.bias"."""
        return {key: value.copy() for key, value in self._params.items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy `state` into the parameters; keys and shapes must match exactly."""
        missing = sorted(set(self._params) - set(state))
        unexpected = sorted(set(state) - set(self._params))
        if missing or unexpected:
            raise ValueError(f"state keys do not match the network: missing {missing}, "
                             f"unexpected {unexpected}")
        for key, target in self._params.items():
            value = np.asarray(state[key])
            if value.shape != target.shape:
                raise ValueError(f"{key}: expected shape {target.shape}, received {value.shape}")
            np.copyto(target, value, casting="same_kind")
        if self.frozen:
            self.freeze()

    def set_dropout_rates(self, rates: Sequence[float]) -> None:
        """Set each dropout layer's rate, in layer order."""
        if len(rates) != len(self.dropout_layers):
            raise ValueError(f"expected {len(self.dropout_layers)} rates, received {len(rates)}")
        for layer, rate in zip(self.dropout_layers, rates, strict=True):
            layer.rate = rate


def build_layer(spec: Any) -> Layer:
    """One unbuilt layer from its dict, e.g. {"type": "dense", "units": 64}."""
    if not isinstance(spec, dict):
        raise SpecError("invalid value", expected="an object with a 'type' field", received=spec)
    kind = spec.get("type")
    if kind in ACTIVATIONS:
        if "activation" in spec:
            raise SpecError("unknown field", field="activation",
                            expected="no activation field on an activation layer",
                            received=spec["activation"])
        return call_with_spec(ActivationLayer, {**spec, "activation": kind})
    kind = validation.choice(kind, "type", sorted([*LAYER_TYPES, *ACTIVATIONS]))
    return call_with_spec(LAYER_TYPES[kind], spec)


def build_network(layers: Sequence[dict[str, Any]], input_shape: Sequence[int], *, seed: int,
                  dtype: str = "float32", materialize: bool = True) -> Network:
    """A built network from layer dicts, its weights drawn from np.random.default_rng(seed).

    input_shape is one sample's shape: (features,) or (channels, height, width).
    Raises SpecError (with layer_index and field) for any invalid layer or shape.
    `materialize=False` validates shapes and counts parameters without allocating weights
    (the result can tell its shapes and size but not compute).
    """
    if not isinstance(layers, (list, tuple)) or not layers:
        raise SpecError("invalid value", field="layers", expected="a non-empty list of layers",
                        received=layers)
    if (not isinstance(input_shape, (list, tuple))
            or not 1 <= len(input_shape) <= MAX_INPUT_RANK):
        raise SpecError("invalid value", field="input_shape",
                        expected=f"a list of 1 to {MAX_INPUT_RANK} positive integers",
                        received=input_shape)
    for size in input_shape:
        validation.integer(size, "input_shape", minimum=1)
    validation.integer(seed, "seed", minimum=0)
    validation.choice(dtype, "dtype", DTYPES)
    rng = np.random.default_rng(seed)
    built: list[Layer] = []
    shape = tuple(input_shape)
    for index, spec in enumerate(layers):
        try:
            layer = build_layer(spec)
            shape = layer.build(shape, rng=rng, dtype=np.dtype(dtype), materialize=materialize)
        except SpecError as error:
            raise error.at_layer(index) from None
        built.append(layer)
    return Network(built, tuple(input_shape), rng, np.dtype(dtype))
