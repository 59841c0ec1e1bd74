import numpy as np
import pytest

from service.engine.errors import SpecError
from service.engine.layers.activations import ACTIVATIONS
from service.engine.layers.dense import Dense
from tests.engine.layers.contract import build, run_layer_test


@pytest.mark.parametrize("kwargs", [
    *({"activation": name} for name in ACTIVATIONS),
    {"activation": "leaky_relu", "alpha": 0.2, "max_norm": 3.0},
    {"activation": "tanh", "use_bias": False, "kernel_initializer": "he_uniform"},
])
def test_layer_contract(kwargs):
    run_layer_test(Dense, {"units": 5, **kwargs}, (4,), (5,), batch=3)


def test_forward_is_x_at_w_plus_b():
    layer = build(Dense(3), (4,))
    layer.params["bias"][:] = [1.0, -2.0, 0.5]
    x = np.random.default_rng(0).standard_normal((6, 4))
    np.testing.assert_allclose(layer.forward(x, training=True),
                               x @ layer.params["weight"] + layer.params["bias"])
    assert layer.params["weight"].shape == (4, 3)
    assert layer.params["bias"].shape == (3,)


def test_relu_output_has_no_negative_values_and_float32_stays_float32():
    layer = build(Dense(8, "relu"), (4,), dtype=np.float32)
    y = layer.forward(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32),
                      training=False)
    assert y.dtype == np.float32
    assert (y >= 0).all()


def test_initializers_follow_the_activation_and_their_scale():
    fan_in = 400
    relu = build(Dense(300, "relu"), (fan_in,))
    tanh = build(Dense(300, "tanh"), (fan_in,))
    assert relu.kernel_initializer == "he_normal"
    assert tanh.kernel_initializer == "glorot_uniform"
    assert relu.params["weight"].std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.02)
    limit = np.sqrt(6 / (fan_in + 300))
    assert np.abs(tanh.params["weight"]).max() <= limit
    assert tanh.params["weight"].std() == pytest.approx(limit / np.sqrt(3), rel=0.02)
    uniform = build(Dense(300, kernel_initializer="he_uniform"), (fan_in,))
    assert np.abs(uniform.params["weight"]).max() <= np.sqrt(6 / fan_in)
    assert not relu.params["bias"].any()


def test_max_norm_caps_each_units_incoming_weights():
    layer = build(Dense(6, max_norm=0.5), (10,))
    layer.params["weight"][:] *= 10
    layer.apply_constraints()
    norms = np.linalg.norm(layer.params["weight"], axis=0)
    np.testing.assert_allclose(norms, 0.5, rtol=1e-12)
    small = build(Dense(6, max_norm=100.0), (10,))
    before = small.params["weight"].copy()
    small.apply_constraints()
    np.testing.assert_array_equal(small.params["weight"], before)


def test_backward_without_input_grad_still_fills_parameter_grads():
    layer = build(Dense(3), (2,))
    x = np.ones((4, 2))
    layer.forward(x, training=True)
    assert layer.backward(np.ones((4, 3)), need_input_grad=False) is None
    np.testing.assert_array_equal(layer.grads["weight"], np.full((2, 3), 4.0))
    np.testing.assert_array_equal(layer.grads["bias"], np.full(3, 4.0))


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"units": 0}, "units"),
    ({"units": 2.5}, "units"),
    ({"units": True}, "units"),
    ({"units": 3, "activation": "swish"}, "activation"),
    ({"units": 3, "max_norm": -1.0}, "max_norm"),
    ({"units": 3, "kernel_initializer": "ones"}, "kernel_initializer"),
    ({"units": 3, "activation": "relu", "alpha": 0.1}, "alpha"),
])
def test_invalid_arguments_name_the_field(kwargs, field):
    with pytest.raises(SpecError) as info:
        Dense(**kwargs)
    assert info.value.field == field
    assert "Expected" in str(info.value)


def test_image_input_needs_flatten():
    with pytest.raises(SpecError, match="flatten"):
        Dense(3).build((1, 8, 8), rng=np.random.default_rng(0), dtype=np.dtype(np.float32))
