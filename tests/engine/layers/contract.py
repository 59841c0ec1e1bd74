"""The contract every engine layer keeps, checked by one helper (as Keras's `run_layer_test`).

`run_layer_test(layer_cls, init_kwargs, input_shape, expected_output_shape)` builds the layer,
round-trips its config, checks the output shape and dtype of a forward pass, the shapes of its
gradients, and compares backward() with float64 central differences for the input and for
every parameter (biases redrawn from a standard normal first). Each layer's test file then
tests only what is special about that layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from service.engine.layers.base import Layer, Shape
from tests.engine.gradcheck import check_layer_gradients


def build(layer: Layer, input_shape: Shape, *, dtype: type = np.float64, seed: int = 0) -> Layer:
    """`layer` built for per-sample inputs of `input_shape`, its weights drawn from `seed`."""
    layer.build(tuple(input_shape), rng=np.random.default_rng(seed), dtype=np.dtype(dtype))
    return layer


def _redraw_zero_parameters(layer: Layer, seed: int = 1) -> None:
    """Parameters the initialiser left all zero (biases) drawn from a standard normal, so
    that their gradients and their effect on the output are not trivial."""
    fill = np.random.default_rng(seed)
    for value in layer.params.values():
        if not value.any():
            value[...] = fill.standard_normal(value.shape)


def run_layer_test(
    layer_cls: type[Layer],
    init_kwargs: dict[str, Any],
    input_shape: Shape,
    expected_output_shape: Shape,
    *,
    batch: int = 2,
    training: bool = False,
    gradient_check: bool = True,
    rtol: float = 1e-6,
) -> Layer:
    """Check `layer_cls(**init_kwargs)` against the layer contract; returns the built layer.

    input_shape and expected_output_shape are per sample (no batch axis). In float64:
    config() names the type and rebuilds an equal layer; build() returns expected_output_shape
    and gives grads the keys and shapes of params; forward on (batch, *input_shape) returns
    (batch, *expected_output_shape), finite; backward matches central differences. With
    `training=True` the forward runs in training mode and the layer's generator is rewound
    before every forward, so random masks repeat. float32 stays float32 through forward and
    backward.
    """
    layer = layer_cls(**init_kwargs)
    spec = layer.config()
    assert spec["type"] == layer_cls.type_name, spec
    rebuilt = layer_cls(**{key: value for key, value in spec.items() if key != "type"})
    assert rebuilt.config() == spec

    assert layer.build(tuple(input_shape), rng=np.random.default_rng(0),
                       dtype=np.dtype(np.float64)) == tuple(expected_output_shape)
    assert layer.output_shape == tuple(expected_output_shape)
    assert set(layer.grads) == set(layer.params)
    for key, value in layer.params.items():
        assert layer.grads[key].shape == value.shape, key

    layer = build(layer_cls(**init_kwargs), input_shape)
    _redraw_zero_parameters(layer)
    x = np.random.default_rng(2).standard_normal((batch, *input_shape))
    y = layer.forward(x, training=training)
    assert y.shape == (batch, *expected_output_shape)
    assert y.dtype == np.float64
    assert np.isfinite(y).all()
    if gradient_check:
        rng = getattr(layer, "rng", None)
        state = rng.bit_generator.state if training and rng is not None else None

        def rewind() -> None:
            if state is not None:
                rng.bit_generator.state = state

        check_layer_gradients(layer, x, training=training, rtol=rtol, before_forward=rewind)

    single = build(layer_cls(**init_kwargs), input_shape, dtype=np.float32)
    y32 = single.forward(x.astype(np.float32), training=training)
    assert y32.dtype == np.float32
    dx32 = single.backward(np.ones_like(y32))
    assert dx32 is not None and dx32.dtype == np.float32
    assert all(grad.dtype == np.float32 for grad in single.grads.values())
    return layer
