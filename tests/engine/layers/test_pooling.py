import numpy as np
import pytest

from service.engine.errors import SpecError
from service.engine.layers.pooling import AvgPool2D, MaxPool2D
from tests.engine.gradcheck import check_layer_gradients

POOLS = [MaxPool2D, AvgPool2D]
# (kwargs, input (C, H, W)): non-overlapping, overlapping, gaps between windows, odd sizes.
CASES = [
    ({}, (2, 6, 6)),
    ({}, (2, 7, 5)),
    ({"pool_size": 3}, (1, 7, 8)),
    ({"pool_size": 3, "stride": 2}, (2, 7, 7)),
    ({"pool_size": (2, 3), "stride": 1}, (2, 5, 6)),
    ({"pool_size": 2, "stride": (3, 1)}, (1, 7, 5)),
    ({"pool_size": 1}, (2, 3, 3)),
]


def built(layer, input_shape, dtype=np.float64):
    layer.build(input_shape, rng=np.random.default_rng(0), dtype=np.dtype(dtype))
    return layer


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
@pytest.mark.parametrize(("kwargs", "input_shape"), CASES)
def test_forward_matches_the_naive_loops(cls, kwargs, input_shape):
    layer = built(cls(**kwargs), input_shape)
    x = np.random.default_rng(1).standard_normal((3, *input_shape))
    y = layer.forward(x, training=True)
    reduce = np.max if cls is MaxPool2D else np.mean
    expected = naive_pool(x, layer.pool_size, layer.stride, reduce)
    assert y.shape == (3, *layer.output_shape)
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("cls", POOLS)
@pytest.mark.parametrize(("kwargs", "input_shape"), CASES)
def test_gradients_match_central_differences(cls, kwargs, input_shape):
    layer = built(cls(**kwargs), input_shape)
    x = np.random.default_rng(2).standard_normal((2, *input_shape))
    check_layer_gradients(layer, x)


@pytest.mark.parametrize("kwargs", [{}, {"pool_size": 3}, {"pool_size": 3, "stride": 1}])
def test_max_pool_gives_each_window_one_winner_on_ties(kwargs):
    layer = built(MaxPool2D(**kwargs), (1, 7, 6))
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
    layer = built(MaxPool2D(**kwargs), (1, 2, 2))
    x = np.array([[[[1.0, 5.0], [5.0, 2.0]]]])
    layer.forward(x, training=True)
    np.testing.assert_array_equal(layer.backward(np.array([[[[3.0]]]])), [[[[0, 3], [0, 0]]]])


def test_backward_routes_to_the_argmax_and_zeroes_the_uncovered_border():
    layer = built(MaxPool2D(2), (1, 3, 3))
    x = np.array([[[[1.0, 5.0, 9.0], [3.0, 2.0, 9.0], [9.0, 9.0, 9.0]]]])
    layer.forward(x, training=True)
    dx = layer.backward(np.array([[[[7.0]]]]))
    np.testing.assert_array_equal(dx, [[[[0, 7, 0], [0, 0, 0], [0, 0, 0]]]])
    assert layer.backward(np.array([[[[7.0]]]]), need_input_grad=False) is None


@pytest.mark.parametrize("cls", POOLS)
def test_float32_stays_float32(cls):
    layer = built(cls(2), (3, 7, 7), dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((4, 3, 7, 7)).astype(np.float32)
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32
    assert y.shape == (4, 3, 3, 3)
    assert layer.backward(np.ones_like(y)).dtype == np.float32


@pytest.mark.parametrize("cls", POOLS)
def test_empty_output_is_a_spec_error_with_the_numbers(cls):
    with pytest.raises(SpecError) as info:
        built(cls(pool_size=(2, 4)), (3, 5, 3))
    assert info.value.field == "pool_size"
    assert info.value.received == "input 5x3, pool_size 2x4"


@pytest.mark.parametrize("cls", POOLS)
@pytest.mark.parametrize("input_shape", [(10,), (5, 5), (1, 1, 5, 5)])
def test_non_image_input_is_a_spec_error(cls, input_shape):
    with pytest.raises(SpecError) as info:
        built(cls(), input_shape)
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
def test_config_rebuilds_the_same_layer(cls):
    for layer in (cls(), cls(pool_size=(3, 2), stride=1)):
        spec = layer.config()
        assert spec["type"] == cls.type_name
        spec.pop("type")
        rebuilt = cls(**spec)
        assert rebuilt.config() == layer.config()
        assert (rebuilt.pool_size, rebuilt.stride) == (layer.pool_size, layer.stride)
    assert cls(3).stride == (3, 3)


def test_backward_after_an_inference_forward_gathers_the_windows():
    layer = built(MaxPool2D(2), (1, 4, 4))
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4))
    y = layer.forward(x, training=True)
    trained = layer.backward(np.ones_like(y)).copy()
    layer.forward(x, training=False)
    np.testing.assert_array_equal(layer.backward(np.ones_like(y)), trained)
