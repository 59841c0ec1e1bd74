import numpy as np
import pytest

from service.engine.errors import SpecError
from service.engine.layers.dropout import Dropout, GaussianDropout, SpatialDropout2D
from tests.engine.layers.contract import build, run_layer_test


@pytest.mark.parametrize(("cls", "kwargs", "shape"), [
    (Dropout, {"rate": 0.4}, (6,)),
    (Dropout, {"rate": 0.5, "noise_shape": [None, 1, None, None]}, (3, 2, 2)),
    (SpatialDropout2D, {"rate": 0.3}, (4, 2, 3)),
    (GaussianDropout, {"rate": 0.3}, (6,)),
])
def test_layer_contract_in_training(cls, kwargs, shape):
    """Gradients with the noise held fixed (the generator rewound before every forward)."""
    run_layer_test(cls, kwargs, shape, shape, batch=3, training=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_zero_fraction_matches_rate_and_mean_is_preserved(rate, dtype):
    layer = build(Dropout(rate), (1000,), dtype=dtype)
    x = np.ones((200, 1000), dtype=dtype)
    y = layer.forward(x, training=True)
    assert y.dtype == dtype
    n = x.size
    # Binomial standard deviation of the zero fraction is sqrt(r(1-r)/n) <= 0.0012.
    assert abs((y == 0).mean() - rate) < 0.006
    assert abs(y.mean() - 1.0) < 6 * np.sqrt(rate / (1 - rate) / n)
    np.testing.assert_allclose(y[y != 0], 1 / (1 - rate), rtol=1e-6)


def test_identity_at_inference_and_gradient_passes_through():
    layer = build(Dropout(0.5), (10,), dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((4, 10)).astype(np.float32)
    assert layer.forward(x, training=False) is x
    dout = np.ones_like(x)
    # The seed crashed here: its mask was None after an inference forward.
    np.testing.assert_array_equal(layer.backward(dout), dout)


def test_gradient_is_masked_by_the_same_scaled_mask():
    layer = build(Dropout(0.3), (50,), dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((8, 50))
    y = layer.forward(x, training=True).copy()
    dout = np.random.default_rng(1).standard_normal(x.shape)
    dx = layer.backward(dout)
    scaled_mask = np.where(y == 0, 0.0, 1 / 0.7)
    np.testing.assert_allclose(dx, dout * scaled_mask, rtol=1e-15)
    np.testing.assert_allclose(y, x * scaled_mask, rtol=1e-15)


def test_new_mask_every_training_forward():
    layer = build(Dropout(0.5), (100,), dtype=np.float32)
    x = np.ones((2, 100), dtype=np.float32)
    first = layer.forward(x, training=True).copy()
    second = layer.forward(x, training=True)
    assert not np.array_equal(first, second)


def test_rate_zero_is_identity_in_training():
    layer = build(Dropout(0.0), (5,), dtype=np.float32)
    x = np.ones((2, 5), dtype=np.float32)
    assert layer.forward(x, training=True) is x


def test_noise_shape_shares_the_mask_along_size_one_axes():
    layer = build(Dropout(0.5, noise_shape=[None, 1, None, None]), (3, 4, 4), dtype=np.float32)
    y = layer.forward(np.ones((6, 3, 4, 4), dtype=np.float32), training=True)
    # Every channel of a sample has the same mask.
    assert (y == y[:, :1]).all()
    assert 0 < (y == 0).mean() < 1


@pytest.mark.parametrize("noise_shape", [[None, 3], [None, 2, None, None], "abc", [0, None]])
def test_bad_noise_shape_is_rejected(noise_shape):
    with pytest.raises(SpecError) as info:
        build(Dropout(0.5, noise_shape=noise_shape), (3, 4, 4), dtype=np.float32)
    assert info.value.field == "noise_shape"


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "0.5", None, float("nan")])
def test_rate_outside_0_1_is_rejected(rate):
    with pytest.raises(SpecError) as info:
        Dropout(rate)
    assert info.value.field == "rate"
    assert "[0, 1)" in str(info.value) or "< 1.0" in str(info.value)


def test_spatial_dropout_zeroes_whole_channels():
    layer = build(SpatialDropout2D(0.5), (16, 5, 5), dtype=np.float32)
    x = np.random.default_rng(0).random((8, 16, 5, 5)).astype(np.float32) + 0.1
    y = layer.forward(x, training=True)
    channel_zero = (y == 0).all(axis=(2, 3))
    channel_kept = (y != 0).all(axis=(2, 3))
    assert (channel_zero | channel_kept).all()
    assert 0.3 < channel_zero.mean() < 0.7
    np.testing.assert_allclose(y[channel_kept], (x * 2)[channel_kept], rtol=1e-6)
    dx = layer.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx == 0, y == 0)


def test_spatial_dropout_needs_images():
    with pytest.raises(SpecError) as info:
        build(SpatialDropout2D(0.5), (10,), dtype=np.float32)
    assert info.value.field == "type"


def test_gaussian_dropout_noise_has_mean_one_and_the_paper_variance():
    rate = 0.3
    layer = build(GaussianDropout(rate), (10000,), dtype=np.float64)
    x = np.ones((20, 10000))
    y = layer.forward(x, training=True)
    assert y.mean() == pytest.approx(1.0, abs=0.005)
    assert y.var() == pytest.approx(rate / (1 - rate), rel=0.02)
    assert layer.forward(x, training=False) is x
    dout = np.full_like(x, 2.0)
    y = layer.forward(x, training=True).copy()
    np.testing.assert_allclose(layer.backward(dout), 2.0 * y)


def test_schedules_can_set_the_rate_and_config_keeps_the_configured_one():
    layer = Dropout(0.5)
    layer.rate = 0.2
    assert layer.rate == 0.2
    assert layer.config() == {"type": "dropout", "rate": 0.5}
    with pytest.raises(SpecError):
        layer.rate = 1.0
