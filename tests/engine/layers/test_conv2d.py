import numpy as np
import pytest

from service.engine.errors import SpecError
from service.engine.layers.conv2d import Conv2D
from tests.engine.layers.contract import build, run_layer_test


def naive_conv(x, weight, bias, stride, pads):
    """The definition, by loops over output pixels."""
    top, bottom, left, right = pads
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    _, _, kh, kw = weight.shape
    sh, sw = stride
    oh = (xp.shape[2] - kh) // sh + 1
    ow = (xp.shape[3] - kw) // sw + 1
    y = np.zeros((x.shape[0], weight.shape[0], oh, ow))
    for n in range(x.shape[0]):
        for f in range(weight.shape[0]):
            for a in range(oh):
                for b in range(ow):
                    patch = xp[n, :, sh * a : sh * a + kh, sw * b : sw * b + kw]
                    y[n, f, a, b] = np.sum(patch * weight[f]) + bias[f]
    return y


@pytest.mark.parametrize(
    ("kwargs", "input_shape", "pads"),
    [
        ({"kernel_size": 3}, (2, 6, 7), (0, 0, 0, 0)),
        ({"kernel_size": (3, 2), "stride": 2}, (2, 7, 6), (0, 0, 0, 0)),
        ({"kernel_size": 3, "padding": "same"}, (3, 5, 6), (1, 1, 1, 1)),
        ({"kernel_size": (2, 4), "padding": "same"}, (1, 5, 6), (0, 1, 1, 2)),
        ({"kernel_size": 3, "stride": 2, "padding": "same"}, (2, 7, 8), (1, 1, 0, 1)),
        ({"kernel_size": (3, 1), "stride": (1, 2), "padding": 2}, (2, 5, 5), (2, 2, 2, 2)),
        ({"kernel_size": 1, "stride": 3}, (4, 7, 7), (0, 0, 0, 0)),
    ],
)
def test_forward_matches_the_naive_loops(kwargs, input_shape, pads):
    layer = build(Conv2D(3, **kwargs), input_shape)
    layer.params["bias"][:] = [0.5, -1.0, 2.0]
    x = np.random.default_rng(2).standard_normal((3, *input_shape))
    y = layer.forward(x, training=True)
    expected = naive_conv(x, layer.params["weight"], layer.params["bias"], layer.stride, pads)
    assert y.shape == (3, *layer.output_shape)
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    ("kwargs", "input_shape", "output_shape"),
    [
        ({"kernel_size": 3, "activation": "linear"}, (2, 5, 5), (3, 3, 3)),
        ({"kernel_size": 3, "stride": 2, "activation": "tanh"}, (2, 6, 5), (3, 2, 2)),
        ({"kernel_size": (2, 3), "padding": "same", "activation": "relu"}, (2, 4, 5), (3, 4, 5)),
        ({"kernel_size": 3, "stride": 2, "padding": "same", "activation": "tanh"}, (3, 5, 4),
         (3, 3, 2)),
        ({"kernel_size": (3, 2), "padding": 1, "activation": "linear"}, (2, 4, 4), (3, 4, 5)),
        ({"kernel_size": (1, 3), "stride": (2, 1), "padding": 1, "activation": "relu"},
         (1, 5, 4), (3, 4, 4)),
        ({"kernel_size": 2, "activation": "sigmoid", "use_bias": False}, (2, 4, 4), (3, 3, 3)),
        ({"kernel_size": 2, "activation": "softmax", "padding": "same"}, (2, 3, 4), (3, 3, 4)),
        ({"kernel_size": 3, "activation": "leaky_relu", "alpha": 0.2, "stride": 2}, (1, 5, 5),
         (3, 2, 2)),
        ({"kernel_size": (3, 5), "stride": (1, 2), "padding": "same", "activation": "leaky_relu",
          "alpha": 0.2, "max_norm": 3.0, "use_bias": False}, (2, 5, 6), (3, 5, 3)),
    ],
)
def test_layer_contract(kwargs, input_shape, output_shape):
    run_layer_test(Conv2D, {"filters": 3, **kwargs}, input_shape, output_shape)


def test_gradients_without_activation_and_without_input_grad():
    layer = build(Conv2D(2, 3, activation="tanh", padding="same"), (2, 4, 4))
    layer.params["bias"][:] = [0.5, -1.0]
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4))
    z = layer.forward(x, training=True, activate=False).copy()
    y = layer.forward(x, training=True)
    np.testing.assert_allclose(y, np.tanh(z))
    dout = np.random.default_rng(1).standard_normal(y.shape)
    dx_linear = layer.backward(dout, activated=False).copy()
    dw_linear = layer.grads["weight"].copy()
    linear = build(Conv2D(2, 3, padding="same"), (2, 4, 4))
    linear.params["weight"][:] = layer.params["weight"]
    linear.params["bias"][:] = layer.params["bias"]
    linear.forward(x, training=True)
    np.testing.assert_allclose(dx_linear, linear.backward(dout))
    np.testing.assert_allclose(dw_linear, linear.grads["weight"])
    assert linear.backward(dout, need_input_grad=False) is None
    np.testing.assert_allclose(linear.grads["bias"], dout.sum(axis=(0, 2, 3)))


def test_weight_gradient_summed_over_image_chunks_matches_the_definition():
    # A one-channel input as large as this makes the layer sum dW over several image chunks.
    layer = build(Conv2D(2, 3, padding=1), (1, 50, 50))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 1, 50, 50))
    dout = rng.standard_normal((4, 2, 50, 50))
    layer.forward(x, training=True)
    layer.backward(dout, need_input_grad=False)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.zeros((2, 1, 3, 3))
    for i in range(3):
        for j in range(3):
            expected[:, 0, i, j] = np.einsum("nfhw,nhw->f", dout, xp[:, 0, i : i + 50, j : j + 50])
    np.testing.assert_allclose(layer.grads["weight"], expected, rtol=1e-10)
    np.testing.assert_allclose(layer.grads["bias"], dout.sum(axis=(0, 2, 3)), rtol=1e-10)


def test_shapes_and_parameter_layout():
    layer = build(Conv2D(32, 3, activation="relu"), (1, 28, 28))
    assert layer.output_shape == (32, 26, 26)
    assert layer.params["weight"].shape == (32, 1, 3, 3)
    assert layer.params["bias"].shape == (32,)
    assert build(Conv2D(4, (3, 5), stride=(2, 3), padding="same"), (2, 9, 10)).output_shape == (
        4,
        5,
        4,
    )
    assert build(Conv2D(4, 5, padding=2), (2, 9, 10)).output_shape == (4, 9, 10)


def test_initialisers_use_the_receptive_field_as_fan_in():
    relu = build(Conv2D(200, 3, activation="relu"), (50, 5, 5))
    assert relu.kernel_initializer == "he_normal"
    assert relu.params["weight"].std() == pytest.approx(np.sqrt(2 / (50 * 9)), rel=0.02)
    tanh = Conv2D(200, 3, activation="tanh")
    tanh.build((50, 5, 5), rng=np.random.default_rng(0), dtype=np.dtype(np.float64))
    assert tanh.kernel_initializer == "glorot_uniform"
    assert np.abs(tanh.params["weight"]).max() <= np.sqrt(6 / (50 * 9 + 200 * 9))
    assert not tanh.params["bias"].any()


def test_max_norm_caps_each_filter():
    layer = build(Conv2D(5, 3, max_norm=0.5), (2, 5, 5))
    layer.params["weight"][:] *= 10
    layer.apply_constraints()
    norms = np.sqrt((layer.params["weight"] ** 2).sum(axis=(1, 2, 3)))
    np.testing.assert_allclose(norms, 0.5, rtol=1e-12)
    small = build(Conv2D(5, 3, max_norm=100.0), (2, 5, 5))
    before = small.params["weight"].copy()
    small.apply_constraints()
    np.testing.assert_array_equal(small.params["weight"], before)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"filters": 0, "kernel_size": 3}, "filters"),
        ({"filters": 2, "kernel_size": 0}, "kernel_size"),
        ({"filters": 2, "kernel_size": (3, 3, 3)}, "kernel_size"),
        ({"filters": 2, "kernel_size": 3, "stride": 0}, "stride"),
        ({"filters": 2, "kernel_size": 3, "padding": "full"}, "padding"),
        ({"filters": 2, "kernel_size": 3, "padding": -1}, "padding"),
        ({"filters": 2, "kernel_size": 3, "padding": 1.5}, "padding"),
        ({"filters": 2, "kernel_size": 3, "activation": "swish"}, "activation"),
        ({"filters": 2, "kernel_size": 3, "alpha": 0.1}, "alpha"),
        ({"filters": 2, "kernel_size": 3, "max_norm": 0}, "max_norm"),
        ({"filters": 2, "kernel_size": 3, "kernel_initializer": "ones"}, "kernel_initializer"),
        ({"filters": 2, "kernel_size": 3, "use_bias": 1}, "use_bias"),
    ],
)
def test_invalid_arguments_name_the_field(kwargs, field):
    with pytest.raises(SpecError) as info:
        Conv2D(**kwargs)
    assert info.value.field == field
    assert "Expected" in str(info.value)


def test_empty_output_is_a_spec_error_with_the_numbers():
    with pytest.raises(SpecError) as info:
        build(Conv2D(2, 7), (1, 5, 5))
    assert info.value.field == "kernel_size"
    assert "input 5x5, kernel 7x7, padding 0" in str(info.value)
    assert "5x5" in info.value.expected
    with pytest.raises(SpecError) as info:
        build(Conv2D(2, (8, 3), padding=1), (1, 5, 5))
    assert info.value.received == "input 5x5, kernel 8x3, padding 1"
    assert "7x7" in info.value.expected
    build(Conv2D(2, 7, padding="same"), (1, 5, 5))  # "same" always fits


@pytest.mark.parametrize("input_shape", [(784,), (28, 28), (1, 1, 28, 28)])
def test_non_image_input_is_a_spec_error(input_shape):
    with pytest.raises(SpecError) as info:
        build(Conv2D(2, 3), input_shape)
    assert info.value.field == "type"


def test_large_inference_batches_run_in_chunks(monkeypatch):
    from service.engine.layers import conv2d

    layer = build(Conv2D(3, 3, activation="relu", padding=1), (2, 6, 5))
    x = np.random.default_rng(0).standard_normal((7, 2, 6, 5))
    whole = layer.forward(x, training=False).copy()
    monkeypatch.setattr(conv2d, "_INFERENCE_CHUNK_ELEMENTS", 19 * 2 * 30)  # 2 images a chunk
    chunked = layer.forward(x, training=False)
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-12)
    with pytest.raises(RuntimeError):
        layer.backward(np.ones_like(chunked))
    np.testing.assert_allclose(layer.forward(x, training=True), whole, rtol=0, atol=1e-12)


def test_strided_outputs_flow_through_conv_pool_conv():
    """Layer outputs and input gradients are strided views; the next layer must cope."""
    from service.engine.layers.pooling import MaxPool2D
    from tests.engine.gradcheck import assert_close, numerical_gradient

    rng = np.random.default_rng(0)
    layers = [Conv2D(3, 3, activation="tanh"), MaxPool2D(2), Conv2D(2, 2, padding="same")]
    shape = (2, 9, 8)
    for layer in layers:
        shape = layer.build(shape, rng=rng, dtype=np.dtype(np.float64))
    x = rng.standard_normal((2, 2, 9, 8))
    projection = rng.standard_normal((2, *shape))

    def loss() -> float:
        h = x
        for layer in layers:
            h = layer.forward(h, training=True)
        return float(np.sum(h * projection))

    loss()
    grad = projection
    for layer in reversed(layers):
        grad = layer.backward(grad)
    assert_close(np.array(grad), numerical_gradient(loss, x), rtol=1e-6)
