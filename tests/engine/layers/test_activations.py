import numpy as np
import pytest

from service.engine.errors import SpecError
from service.engine.layers.activations import (
    ACTIVATIONS,
    ActivationLayer,
    log_softmax,
    softmax,
)
from tests.engine.layers.contract import build, run_layer_test


@pytest.mark.parametrize("kwargs", [*({"activation": name} for name in ACTIVATIONS),
                                    {"activation": "leaky_relu", "alpha": 0.3}])
def test_layer_contract(kwargs):
    run_layer_test(ActivationLayer, kwargs, (5,), (5,), batch=4)


@pytest.mark.parametrize(("name", "expected"), [
    ("linear", lambda z: z),
    ("relu", lambda z: np.maximum(z, 0)),
    ("leaky_relu", lambda z: np.where(z > 0, z, 0.01 * z)),
    ("sigmoid", lambda z: 1 / (1 + np.exp(-z))),
    ("tanh", np.tanh),
    ("softmax", lambda z: np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)),
])
def test_values(name, expected):
    z = np.random.default_rng(0).standard_normal((3, 4))
    layer = build(ActivationLayer(name), (4,))
    np.testing.assert_allclose(layer.forward(z.copy(), training=False), expected(z),
                               rtol=1e-12, atol=1e-15)


def test_sigmoid_and_softmax_are_stable_for_huge_inputs():
    z = np.array([[1000.0, -1000.0, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = build(ActivationLayer("sigmoid"), (3,)).forward(z.copy(), training=False)
        np.testing.assert_allclose(y, [[1.0, 0.0, 0.5]])
        p = softmax(z)
        np.testing.assert_allclose(p, [[1.0, 0.0, 0.0]])
        assert np.isfinite(log_softmax(z)).all()


def test_dropped_sigmoid_unit_outputs_zero_through_dropout_layer():
    """The seed masked the pre-activation, so a dropped sigmoid unit output 0.5.

    dropnet drops the activated output: a dropped unit is exactly 0.
    """
    from service.engine.network import build_network

    net = build_network([{"type": "dense", "units": 200, "activation": "sigmoid"},
                         {"type": "dropout", "rate": 0.5}], (3,), seed=0, dtype="float64")
    x = np.random.default_rng(1).standard_normal((4, 3))
    activated = net.forward(x, training=False).copy()
    y = net.forward(x, training=True)
    dropped = y == 0.0
    assert 0.3 < dropped.mean() < 0.7
    np.testing.assert_allclose(y[~dropped], activated[~dropped] * 2.0, rtol=1e-15)
    assert (activated[dropped] > 0).all()


def test_unknown_activation_is_rejected():
    with pytest.raises(SpecError) as info:
        ActivationLayer("swish")
    assert info.value.field == "activation"
