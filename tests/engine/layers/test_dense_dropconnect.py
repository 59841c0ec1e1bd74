"""Dense's `dropconnect` option: a Bernoulli mask on the weights, one per training batch."""

import numpy as np
import pytest

from service.engine.errors import SpecError
from service.engine.layers.dense import Dense
from service.engine.network import build_network
from service.engine.training import Trainer, TrainingConfig
from tests.engine.gradcheck import assert_close, numerical_gradient


def built(rate: float, in_features: int, units: int, dtype=np.float64, seed: int = 0) -> Dense:
    layer = Dense(units, dropconnect=rate)
    layer.build((in_features,), rng=np.random.default_rng(seed), dtype=np.dtype(dtype))
    return layer


def effective_weight(layer: Dense, in_features: int) -> np.ndarray:
    """W * M / (1 - p) of one training forward (a linear layer), read off with the identity
    as the batch."""
    identity = np.eye(in_features, dtype=layer.dtype)
    return layer.forward(identity, training=True) - layer.params["bias"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_zero_fraction_matches_rate_and_kept_weights_are_scaled(rate, dtype):
    layer = built(rate, 400, 500, dtype)
    weight = layer.params["weight"].copy()
    w_eff = effective_weight(layer, 400)
    assert w_eff.dtype == dtype
    # 200,000 weights: the binomial std of the zero fraction is below 0.0012.
    assert abs((w_eff == 0).mean() - rate) < 0.006
    kept = w_eff != 0
    np.testing.assert_allclose(w_eff[kept], weight[kept] / (1 - rate), rtol=1e-6)


def test_mean_output_over_masks_is_the_inference_output():
    layer = built(0.5, 20, 30)
    x = np.random.default_rng(1).standard_normal((4, 20))
    inference = layer.forward(x, training=False).copy()
    draws = np.stack([layer.forward(x, training=True).copy() for _ in range(4000)])
    # Each output is a sum of 20 terms x_i W_ij m_ij / (1 - p): its std over masks, divided
    # by sqrt(4000), bounds the error of the mean.
    standard_error = draws.std(axis=0) / np.sqrt(len(draws))
    assert (np.abs(draws.mean(axis=0) - inference) < 5 * standard_error + 1e-12).all()


def test_one_mask_per_batch_and_a_new_one_per_forward():
    layer = built(0.5, 10, 12)
    row = np.random.default_rng(2).standard_normal((1, 10))
    y = layer.forward(np.repeat(row, 3, axis=0), training=True).copy()
    np.testing.assert_array_equal(y[0], y[1])
    np.testing.assert_array_equal(y[0], y[2])
    assert not np.array_equal(y, layer.forward(np.repeat(row, 3, axis=0), training=True))


def test_identity_at_inference():
    layer = built(0.7, 6, 4)
    x = np.random.default_rng(3).standard_normal((5, 6))
    expected = x @ layer.params["weight"] + layer.params["bias"]
    np.testing.assert_array_equal(layer.forward(x, training=False), expected)


def test_gradient_is_masked_and_uses_the_dropped_weights():
    layer = built(0.4, 8, 6)
    layer.params["bias"][:] = np.random.default_rng(4).standard_normal(6)
    x = np.random.default_rng(5).standard_normal((7, 8))
    state = layer._rng.bit_generator.state
    w_eff = effective_weight(layer, 8)  # the mask the next forward draws again
    layer._rng.bit_generator.state = state
    layer.forward(x, training=True)
    dout = np.random.default_rng(6).standard_normal((7, 6))
    dx = layer.backward(dout)
    scaled_mask = np.where(w_eff == 0, 0.0, 1 / 0.6)
    np.testing.assert_allclose(layer.grads["weight"], (x.T @ dout) * scaled_mask, rtol=1e-12)
    assert (layer.grads["weight"][w_eff == 0] == 0).all()
    np.testing.assert_allclose(dx, dout @ w_eff.T, rtol=1e-12)
    np.testing.assert_allclose(layer.grads["bias"], dout.sum(axis=0), rtol=1e-12)


@pytest.mark.parametrize("activation", ["linear", "tanh", "softmax"])
def test_gradients_match_central_differences_with_a_fixed_mask(activation):
    layer = Dense(5, activation, dropconnect=0.3)
    layer.build((4,), rng=np.random.default_rng(7), dtype=np.dtype(np.float64))
    layer.params["bias"][:] = np.random.default_rng(8).standard_normal(5)
    x = np.random.default_rng(9).standard_normal((3, 4))
    projection = np.random.default_rng(10).standard_normal((3, 5))
    state = layer._rng.bit_generator.state

    def loss() -> float:
        layer._rng.bit_generator.state = state
        return float(np.sum(layer.forward(x, training=True) * projection))

    loss()
    dx = layer.backward(projection.copy()).copy()
    grads = {key: value.copy() for key, value in layer.grads.items()}
    assert (grads["weight"] == 0).any(), "the check should cover dropped weights"
    assert_close(dx, numerical_gradient(loss, x))
    for key, param in layer.params.items():
        assert_close(grads[key], numerical_gradient(loss, param))


def test_backward_after_an_inference_forward_uses_the_whole_weight():
    layer = built(0.5, 6, 3)
    x = np.ones((2, 6))
    layer.forward(x, training=True)
    layer.forward(x, training=False)
    dout = np.ones((2, 3))
    dx = layer.backward(dout)
    np.testing.assert_allclose(dx, dout @ layer.params["weight"].T)
    np.testing.assert_allclose(layer.grads["weight"], x.T @ dout)


def test_masks_come_from_the_injected_generator():
    first = built(0.5, 10, 10, seed=3)
    second = built(0.5, 10, 10, seed=3)
    x = np.ones((2, 10))
    np.testing.assert_array_equal(first.forward(x, training=True),
                                  second.forward(x, training=True))
    other = built(0.5, 10, 10, seed=4)
    other.params["weight"][:] = first.params["weight"]
    assert not np.array_equal(first.forward(x, training=True), other.forward(x, training=True))


@pytest.mark.parametrize("rate", [-0.1, 1.0, 2, "0.3", True, float("nan")])
def test_rate_outside_0_1_is_rejected_naming_the_field(rate):
    with pytest.raises(SpecError) as info:
        Dense(4, dropconnect=rate)
    assert info.value.field == "dropconnect"
    assert "Expected a finite number >= 0.0 and < 1.0" in str(info.value)


def test_layer_dict_config_round_trip_and_spec_errors():
    layers = [{"type": "dense", "units": 16, "activation": "relu", "dropconnect": 0.3},
              {"type": "dense", "units": 3, "activation": "softmax"}]
    network = build_network(layers, (5,), seed=0)
    spec = network.architecture()["layers"]
    assert spec[0]["dropconnect"] == 0.3
    assert "dropconnect" not in spec[1]  # 0 is the default and stays out of old model files
    assert build_network(spec, (5,), seed=0).architecture()["layers"] == spec
    with pytest.raises(SpecError) as info:
        build_network([{"type": "dense", "units": 4, "dropconnect": 1.5}], (5,), seed=0)
    assert (info.value.layer_index, info.value.field) == (0, "dropconnect")
    with pytest.raises(SpecError) as info:
        build_network([{"type": "conv2d", "filters": 2, "kernel_size": 3, "dropconnect": 0.2}],
                      (1, 6, 6), seed=0)
    assert info.value.field == "dropconnect"


class _Data:
    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.x_train = rng.standard_normal((64, 5)).astype(np.float32)
        self.y_train = (self.x_train[:, 0] > 0).astype(np.int64)
        self.x_test, self.y_test = self.x_train[:16], self.y_train[:16]


def trainer(iterations: int, rate: float = 0.5, checkpoint: bytes | None = None) -> Trainer:
    layers = [{"type": "dense", "units": 16, "activation": "relu", "dropconnect": rate},
              {"type": "dense", "units": 2, "activation": "softmax"}]
    network = build_network(layers, (5,), seed=1)
    config = TrainingConfig(iterations=iterations, batch_size=8, eval_every=10)
    result = Trainer(network, _Data(0), config, checkpoint=checkpoint)
    result.run(on_metrics=lambda records: None)
    return result


def test_training_with_dropconnect_is_seeded_and_resumes_exactly():
    straight = trainer(20).network.parameters()
    again = trainer(20).network.parameters()
    resumed = trainer(20, checkpoint=trainer(10).checkpoint()).network.parameters()
    for key, value in straight.items():
        np.testing.assert_array_equal(value, again[key])
        np.testing.assert_array_equal(value, resumed[key])
    without = trainer(20, rate=0.0).network.parameters()
    assert not np.array_equal(without["layers.0.weight"], straight["layers.0.weight"])
