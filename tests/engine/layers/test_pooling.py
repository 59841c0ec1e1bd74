import numpy as np
import pytest

from service.engine.errors import SpecError
from service.engine.layers.pooling import AvgPool2D, MaxPool2D
from tests.engine.layers.contract import build, run_layer_test

POOLS = [MaxPool2D, AvgPool2D]
# (kwargs, input (C, H, W), output (C, OH, OW)): non-overlapping, overlapping, gaps between
# windows, odd sizes.
CASES = [
    ({}, (2, 6, 6), (2, 3, 3)),
    ({}, (2, 7, 5), (2, 3, 2)),
    ({"pool_size": 3}, (1, 7, 8), (1, 2, 2)),
    ({"pool_size": 3, "stride": 2}, (2, 7, 7), (2, 3, 3)),
    ({"pool_size": (2, 3), "stride": 1}, (2, 5, 6), (2, 4, 4)),
    ({"pool_size": 2, "stride": (3, 1)}, (1, 7, 5), (1, 2, 4)),
    ({"pool_size": 1}, (2, 3, 3), (2, 3, 3)),
]


def naive_pool(x, pool, stride, reduce):
    (ph, pw), (sh, sw) = pool, stride
    oh = (x.shape[2] - ph) // sh + 1
    ow = (x.shape[3] - pw) // sw + 1
    y = np.zeros((*x.shape[:2], oh, ow))
    for a in range(oh):
        for b in range(ow):
            y[:, :, a, b] = reduce(x[:, :, sh * a : sh * a + ph, sw * b : sw * b + pw], axis=(2, 3))
    return y


@pytest.mark.parametrize("cls", POOLS)
@pytest.mark.parametrize(("kwargs", "input_shape", "output_shape"), CASES)
def test_forward_matches_the_naive_loops(cls, kwargs, input_shape, output_shape):
    layer = build(cls(**kwargs), input_shape)
    x = np.random.default_rng(1).standard_normal((3, *input_shape))
    y = layer.forward(x, training=True)
    reduce = np.max if cls is MaxPool2D else np.mean
    expected = naive_pool(x, layer.pool_size, layer.stride, reduce)
    assert y.shape == (3, *output_shape)
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("cls", POOLS)
@pytest.mark.parametrize(("kwargs", "input_shape", "output_shape"), CASES)
def test_layer_contract(cls, kwargs, input_shape, output_shape):
    run_layer_test(cls, kwargs, input_shape, output_shape)


@pytest.mark.parametrize("kwargs", [{}, {"pool_size": 3}, {"pool_size": 3, "stride": 1}])
def test_max_pool_gives_each_window_one_winner_on_ties(kwargs):
    layer = build(MaxPool2D(**kwargs), (1, 7, 6))
    x = np.zeros((2, 1, 7, 6))  # all ties, as after a relu
    y = layer.forward(x, training=True)
    dx = layer.backward(np.ones_like(y))
    assert dx.sum() == y.size
    # The first maximum in row-major order is the top-left pixel.
    sh, sw = layer.stride
    expected = np.zeros_like(x)
    for a in range(y.shape[2]):
        for b in range(y.shape[3]):
            expected[:, :, sh * a, sw * b] += 1
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("kwargs", [{"pool_size": 2}, {"pool_size": 2, "stride": 1}])
def test_max_pool_ties_go_to_the_first_maximum_in_row_major_order(kwargs):
    layer = build(MaxPool2D(**kwargs), (1, 2, 2))
    x = np.array([[[[1.0, 5.0], [5.0, 2.0]]]])
    layer.forward(x, training=True)
    np.testing.assert_array_equal(layer.backward(np.array([[[[3.0]]]])), [[[[0, 3], [0, 0]]]])


def test_backward_routes_to_the_argmax_and_zeroes_the_uncovered_border():
    layer = build(MaxPool2D(2), (1, 3, 3))
    x = np.array([[[[1.0, 5.0, 9.0], [3.0, 2.0, 9.0], [9.0, 9.0, 9.0]]]])
    layer.forward(x, training=True)
    dx = layer.backward(np.array([[[[7.0]]]]))
    np.testing.assert_array_equal(dx, [[[[0, 7, 0], [0, 0, 0], [0, 0, 0]]]])
    assert layer.backward(np.array([[[[7.0]]]]), need_input_grad=False) is None


@pytest.mark.parametrize("cls", POOLS)
def test_empty_output_is_a_spec_error_with_the_numbers(cls):
    with pytest.raises(SpecError) as info:
        build(cls(pool_size=(2, 4)), (3, 5, 3))
    assert info.value.field == "pool_size"
    assert info.value.received == "input 5x3, pool_size 2x4"


@pytest.mark.parametrize("cls", POOLS)
@pytest.mark.parametrize("input_shape", [(10,), (5, 5), (1, 1, 5, 5)])
def test_non_image_input_is_a_spec_error(cls, input_shape):
    with pytest.raises(SpecError) as info:
        build(cls(), input_shape)
    assert info.value.field == "type"


@pytest.mark.parametrize("cls", POOLS)
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"pool_size": 0}, "pool_size"),
        ({"pool_size": (2, 2, 2)}, "pool_size"),
        ({"pool_size": 2, "stride": 0}, "stride"),
        ({"pool_size": 2, "stride": "2"}, "stride"),
    ],
)
def test_invalid_arguments_name_the_field(cls, kwargs, field):
    with pytest.raises(SpecError) as info:
        cls(**kwargs)
    assert info.value.field == field


@pytest.mark.parametrize("cls", POOLS)
def test_stride_defaults_to_the_pool_size_and_config_says_it(cls):
    layer = cls(3)
    assert layer.stride == (3, 3)
    assert layer.config() == {"type": cls.type_name, "pool_size": [3, 3], "stride": [3, 3]}


def test_backward_after_an_inference_forward_gathers_the_windows():
    layer = build(MaxPool2D(2), (1, 4, 4))
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4))
    y = layer.forward(x, training=True)
    trained = layer.backward(np.ones_like(y)).copy()
    layer.forward(x, training=False)
    np.testing.assert_array_equal(layer.backward(np.ones_like(y)), trained)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu"])
@pytest.mark.parametrize("kwargs", [{}, {"pool_size": 3, "stride": 1}])
def test_max_pool_backward_applies_the_activation_derivative_at_the_winners(activation, kwargs):
    from service.engine.layers.activations import get_activation

    act = get_activation(activation)
    z = np.random.default_rng(3).standard_normal((2, 3, 7, 6))
    x = act.forward(z, np.empty_like(z))
    layer = build(MaxPool2D(**kwargs), (3, 7, 6))
    y = layer.forward(x, training=True)
    dout = np.random.default_rng(4).standard_normal(y.shape)
    plain = layer.backward(dout).copy()
    expected = act.backward(plain, x, np.empty_like(x))  # the unfused chain rule
    folded = layer.backward(dout, activation=act)
    np.testing.assert_allclose(folded, expected, rtol=0, atol=1e-15)


def test_max_pool_input_gradient_keeps_a_convolution_output_layout():
    from service.engine import functional
    from service.engine.layers.conv2d import Conv2D

    conv = build(Conv2D(4, 3, activation="relu"), (2, 8, 9))
    x = np.random.default_rng(0).standard_normal((3, 2, 8, 9))
    y = conv.forward(x, training=True)
    pool = build(MaxPool2D(2), conv.output_shape)
    pooled = pool.forward(y, training=True)
    dy = pool.backward(np.random.default_rng(1).standard_normal(pooled.shape),
                       activation=conv.activation)
    geo = functional.ConvGeometry.of(x.shape, (3, 3), (1, 1))
    assert functional.columns_of(dy, geo) is not None
    in_place = conv.backward(dy, activated=False).copy()
    grads = {k: v.copy() for k, v in conv.grads.items()}
    copied = conv.backward(np.ascontiguousarray(dy), activated=False)
    np.testing.assert_array_equal(in_place, copied)
    for key, value in conv.grads.items():
        np.testing.assert_array_equal(grads[key], value)


def test_max_pool_of_a_reversed_view_routes_to_the_right_pixels():
    layer = build(MaxPool2D(2), (1, 2, 4))
    x = np.array([[[[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 9.0, 8.0]]]])
    view = x[:, :, :, ::-1]  # negative strides: dx gets a C-contiguous layout
    layer.forward(view, training=True)
    dx = layer.backward(np.array([[[[2.0, 3.0]]]]))
    np.testing.assert_array_equal(dx, [[[[0, 0, 3.0, 0], [0, 2.0, 0, 0]]]])
