"""The Layer interface every engine layer implements, and the buffer pool they share."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .. import initializers

if TYPE_CHECKING:
    from .activations import Activation

Shape = tuple[int, ...]


class BufferPool:
    """Reusable output and gradient arrays, keyed by name and shape.

    Touching fresh memory costs about 1 ms per MiB on small machines, so layers write into
    arrays that live across steps. Only a few shapes occur (the training batch, evaluation
    chunks), and at most `per_name` shapes are kept per name.
    """

    def __init__(self, per_name: int = 4) -> None:
        self._arrays: dict[tuple[str, Shape, np.dtype], np.ndarray] = {}
        self._per_name = per_name

    def get(self, name: str, shape: Shape, dtype: np.dtype) -> np.ndarray:
        """An uninitialised array of `shape` and `dtype`, the same object for the same key.

        A hit is one dict lookup (this runs a dozen times per training step); on a miss past
        `per_name` shapes, the oldest array of that name goes.
        """
        key = (name, shape, dtype)
        array = self._arrays.get(key)
        if array is None:
            same_name = [k for k in self._arrays if k[0] == name]
            if len(same_name) >= self._per_name:
                del self._arrays[same_name[0]]
            array = self._arrays[key] = np.empty(shape, dtype=dtype)
        return array

    def clear(self) -> None:
        self._arrays.clear()


class Layer(abc.ABC):
    """A network layer.

    Lifecycle: validate arguments in `__init__`; `build(input_shape, ...)` creates the
    parameters from the per-sample input shape and returns the per-sample output shape;
    `forward(x, training=...)` and `backward(dout)` compute.

    `params` and `grads` are dicts with matching keys ("weight", "bias"); `backward` overwrites
    `grads` (nothing accumulates across calls). Arrays returned by `forward` and `backward`
    are the layer's own buffers, valid until its next call: copy them to keep them.
    """

    type_name: ClassVar[str]

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None
        self.dtype: np.dtype = np.dtype(np.float32)
        self._buffers = BufferPool()

    def build(self, input_shape: Shape, *, rng: np.random.Generator, dtype: np.dtype,
              materialize: bool = True) -> Shape:
        """Create parameters for inputs of shape (batch, *input_shape); return the output shape.

        `materialize=False` checks shapes and sizes only: parameters are read-only zero-stride
        placeholders of the right shape, so a huge network costs no memory to validate.
        """
        self.input_shape = tuple(input_shape)
        self.dtype = np.dtype(dtype)
        self._materialize = materialize
        self.output_shape = self._build(self.input_shape, rng)
        self.grads = {key: (np.zeros_like(value) if materialize else value)
                      for key, value in self.params.items()}
        return self.output_shape

    def _build(self, input_shape: Shape, rng: np.random.Generator) -> Shape:
        """Subclasses with parameters or shape rules override this; the default keeps the shape."""
        return input_shape

    @abc.abstractmethod
    def forward(self, x: np.ndarray, *, training: bool) -> np.ndarray:
        """x: (batch, *input_shape) -> (batch, *output_shape)."""

    @abc.abstractmethod
    def backward(self, dout: np.ndarray, *, need_input_grad: bool = True) -> np.ndarray | None:
        """dout: (batch, *output_shape) -> dx: (batch, *input_shape), or None when not needed.

        Fills `grads` for every key of `params`.
        """

    @abc.abstractmethod
    def config(self) -> dict[str, Any]:
        """The layer dict that rebuilds this layer (the job spec's form)."""

    def freeze(self) -> None:
        """Make the layer inference-only: its gradient arrays and training buffers go.

        Layers that keep inference copies of their parameters override this; calling it
        again refreshes those copies (Network.load_state_dict does after loading).
        """
        self.grads = {}
        self._buffers.clear()

    def apply_constraints(self) -> None:  # noqa: B027 (most layers have no constraint)
        """Project parameters back onto their constraint set after an update (e.g. max-norm)."""

    def _add_parameter(self, name: str, initializer: str, shape: Shape, *, fan_in: int,
                       fan_out: int, rng: np.random.Generator) -> None:
        """params[name] drawn from `initializer` (a placeholder when not materializing)."""
        if not getattr(self, "_materialize", True):
            self.params[name] = np.broadcast_to(np.zeros((), dtype=self.dtype), shape)
            return
        self.params[name] = initializers.initialize(initializer, shape, fan_in=fan_in,
                                                    fan_out=fan_out, rng=rng, dtype=self.dtype)

    def _buffer(self, name: str, shape: Shape) -> np.ndarray:
        return self._buffers.get(name, shape, self.dtype)


class ActivatedLayer(Layer):
    """A layer whose output ends in an activation that the fused softmax losses skip.

    `forward(..., activate=False)` returns the pre-activation z (the logits), and
    `backward(..., activated=False)` takes dout as the gradient of z rather than of
    activation(z). Network uses both for a final layer whose activation is softmax.
    """

    activation: Activation

    @abc.abstractmethod
    def forward(self, x: np.ndarray, *, training: bool, activate: bool = True) -> np.ndarray:
        """x: (batch, *input_shape) -> (batch, *output_shape); z itself when not `activate`."""

    @abc.abstractmethod
    def backward(self, dout: np.ndarray, *, need_input_grad: bool = True,
                 activated: bool = True) -> np.ndarray | None:
        """dout: the gradient of activation(z), or of z when not `activated`; as Layer's."""
