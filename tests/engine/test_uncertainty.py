"""MC-dropout prediction and the measures beside it (ECE, ROC AUC)."""

import math

import numpy as np
import pytest

from service.engine.checkpoint import load_model, save_model
from service.engine.errors import SpecError
from service.engine.network import Network, build_network
from service.engine.uncertainty import (
    entropy,
    expected_calibration_error,
    mc_dropout_predict,
    roc_auc,
)

CLASSES = 5


def mlp(rate: float, *, seed: int = 0, dtype: str = "float32") -> Network:
    layers = [{"type": "dropout", "rate": rate / 2},
              {"type": "dense", "units": 32, "activation": "relu"},
              {"type": "dropout", "rate": rate},
              {"type": "dense", "units": CLASSES, "activation": "softmax"}]
    return build_network(layers, (8,), seed=seed, dtype=dtype)


def inputs(rows: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, 8)).astype(np.float32)


def test_shapes_and_dtypes():
    result = mc_dropout_predict(mlp(0.5), inputs(7), samples=20, seed=0)
    assert result.mean.shape == result.std.shape == (7, CLASSES)
    assert result.predicted.shape == result.entropy.shape == (7,)
    assert result.mutual_information.shape == (7,)
    assert result.samples == 20
    assert result.predicted.dtype.kind == "i"
    np.testing.assert_array_equal(result.predicted, result.mean.argmax(axis=1))
    np.testing.assert_allclose(result.mean.sum(axis=1), 1.0, rtol=1e-6)


def test_summary_is_the_statistics_of_the_samples_it_draws():
    network, x = mlp(0.5), inputs(3)
    result = mc_dropout_predict(network, x, samples=40, seed=5)
    # The same 40 samples, one per call: with T = 1 a call returns its single sample, and
    # the noise of sample t depends only on (seed, t * rows + row), so tile the rows instead.
    tiled = np.tile(x, (40, 1))
    single = mc_dropout_predict(network, tiled, samples=1, seed=5).mean.reshape(40, 3, CLASSES)
    np.testing.assert_allclose(result.mean, single.mean(axis=0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(result.std, single.std(axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(result.entropy, entropy(single.mean(axis=0)), rtol=1e-6)
    bald = entropy(single.mean(axis=0)) - entropy(single).mean(axis=0)
    np.testing.assert_allclose(result.mutual_information, bald, rtol=1e-5, atol=1e-9)


def test_same_seed_same_answer_other_seed_other_answer():
    network, x = mlp(0.5), inputs(10)
    first = mc_dropout_predict(network, x, samples=30, seed=11)
    second = mc_dropout_predict(network, x, samples=30, seed=11)
    for field in ("mean", "std", "entropy", "mutual_information", "predicted"):
        np.testing.assert_array_equal(getattr(first, field), getattr(second, field))
    other = mc_dropout_predict(network, x, samples=30, seed=12)
    assert not np.array_equal(first.mean, other.mean)


@pytest.mark.parametrize("max_chunk_rows", [1, 7, 10, 45, 299, 100_000])
def test_the_answer_does_not_depend_on_the_chunk_size(max_chunk_rows):
    network, x = mlp(0.5), inputs(10)
    reference = mc_dropout_predict(network, x, samples=30, seed=3)
    chunked = mc_dropout_predict(network, x, samples=30, seed=3, max_chunk_rows=max_chunk_rows)
    # Same masks; only BLAS's rounding for another batch size may differ.
    np.testing.assert_allclose(chunked.mean, reference.mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(chunked.std, reference.std, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(chunked.mutual_information, reference.mutual_information,
                               rtol=1e-4, atol=1e-6)


def test_one_sample_has_no_spread_and_is_one_stochastic_forward():
    network, x = mlp(0.5), inputs(50)
    result = mc_dropout_predict(network, x, samples=1, seed=0)
    assert not result.std.any()
    assert not result.mutual_information.any()
    np.testing.assert_allclose(result.entropy, entropy(result.mean), rtol=1e-12)
    deterministic = network.predict_proba(x)
    assert not np.allclose(result.mean, deterministic, atol=1e-3)  # dropout was on


def test_without_dropout_every_sample_is_the_deterministic_prediction():
    network, x = mlp(0.0), inputs(20)
    result = mc_dropout_predict(network, x, samples=25, seed=0)
    np.testing.assert_allclose(result.mean, network.predict_proba(x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(result.std, 0.0, atol=1e-6)
    np.testing.assert_allclose(result.mutual_information, 0.0, atol=1e-6)


def test_mean_approaches_the_deterministic_prediction_for_small_rates():
    x = inputs(200)
    gaps = []
    for rate in (0.02, 0.2):
        network = mlp(rate)
        result = mc_dropout_predict(network, x, samples=400, seed=0)
        deterministic = network.predict_proba(x)
        gaps.append(np.abs(result.mean - deterministic).max())
        if rate == 0.02:
            assert gaps[-1] < 0.02
            agreement = (result.predicted == deterministic.argmax(axis=1)).mean()
            assert agreement >= 0.97
    assert gaps[0] < gaps[1]


def test_entropy_and_mutual_information_bounds():
    network = mlp(0.6)
    x = np.concatenate([inputs(100), 20 * inputs(50, seed=2)])
    result = mc_dropout_predict(network, x, samples=50, seed=0)
    assert (result.mutual_information >= 0).all()
    assert (result.mutual_information <= result.entropy + 1e-12).all()
    assert (result.entropy <= math.log(CLASSES) + 1e-9).all()
    assert result.mutual_information.max() > 0.01  # the bounds are not met by zeros
    assert (result.std <= 0.5 + 1e-12).all()  # a [0, 1] variable's std is at most 1/2


def test_frozen_network_works_and_its_state_is_untouched():
    network, x = mlp(0.5), inputs(6)
    trainable = mc_dropout_predict(network, x, samples=10, seed=4)
    rng_state = network.rng.bit_generator.state
    rates = [layer.rate for layer in network.dropout_layers]
    network.freeze()
    frozen = mc_dropout_predict(network, x, samples=10, seed=4)
    np.testing.assert_allclose(frozen.mean, trainable.mean, rtol=1e-5, atol=1e-7)
    single_row = mc_dropout_predict(network, x[:1], samples=10, seed=4, max_chunk_rows=1)
    assert single_row.mean.shape == (1, CLASSES)
    assert network.rng.bit_generator.state == rng_state
    assert [layer.rate for layer in network.dropout_layers] == rates
    with pytest.raises(RuntimeError, match="frozen"):
        network.forward(x, training=True)


def test_the_rate_used_is_the_layers_current_one_and_model_files_keep_it():
    network, x = mlp(0.5), inputs(30)
    network.set_dropout_rates([0.0, 0.0])  # as a schedule that ends at 0 leaves it
    result = mc_dropout_predict(network, x, samples=10, seed=0)
    np.testing.assert_allclose(result.std, 0.0, atol=1e-6)
    network.set_dropout_rates([0.1, 0.3])
    loaded, _ = load_model(save_model(network))
    assert [layer.rate for layer in loaded.dropout_layers] == [0.1, 0.3]
    assert [layer.base_rate for layer in loaded.dropout_layers] == [0.25, 0.5]
    np.testing.assert_allclose(mc_dropout_predict(loaded, x, samples=10, seed=0).mean,
                               mc_dropout_predict(network, x, samples=10, seed=0).mean,
                               rtol=1e-6)


def test_float64_networks_give_float64_samples():
    network = mlp(0.5, dtype="float64")
    result = mc_dropout_predict(network, inputs(4).astype(np.float64), samples=5, seed=0)
    np.testing.assert_allclose(result.mean.sum(axis=1), 1.0, rtol=1e-12)


def test_image_networks_with_spatial_gaussian_and_shared_masks():
    layers = [{"type": "conv2d", "filters": 4, "kernel_size": 3, "activation": "relu"},
              {"type": "spatial_dropout2d", "rate": 0.5},
              {"type": "dropout", "rate": 0.3, "noise_shape": [1, None, None, None]},
              {"type": "flatten"},
              {"type": "gaussian_dropout", "rate": 0.2},
              {"type": "dense", "units": 3, "activation": "softmax"}]
    network = build_network(layers, (1, 6, 6), seed=0)
    x = np.random.default_rng(0).random((9, 1, 6, 6)).astype(np.float32)
    result = mc_dropout_predict(network, x, samples=16, seed=1)
    assert result.mean.shape == (9, 3)
    assert (result.std > 0).any()
    chunked = mc_dropout_predict(network, x, samples=16, seed=1, max_chunk_rows=4)
    np.testing.assert_allclose(chunked.mean, result.mean, rtol=1e-5, atol=1e-7)


def noise_probe(dropout: dict) -> Network:
    """x: (N, 1) -> softmax([0, n * x]) with n the layer's noise: log(p1 / p0) reads n back."""
    network = build_network([dropout, {"type": "dense", "units": 2, "activation": "softmax"}],
                            (1,), seed=0, dtype="float64")
    network.parameters()["layers.1.weight"][:] = [[0.0, 1.0]]
    return network


def drawn_noise(network: Network, rows: int, samples: int = 1, **kwargs) -> np.ndarray:
    mean = mc_dropout_predict(network, np.ones((rows, 1)), samples=samples, seed=9,
                              **kwargs).mean
    return np.log(mean[:, 1] / mean[:, 0])


def test_dropout_masks_are_inverted_bernoulli_at_the_layers_rate():
    noise = drawn_noise(noise_probe({"type": "dropout", "rate": 0.25}), 20_000)
    assert abs((np.abs(noise) < 1e-9).mean() - 0.25) < 0.01  # binomial std 0.003
    np.testing.assert_allclose(noise[np.abs(noise) > 1e-9], 1 / 0.75, rtol=1e-9)


def test_gaussian_dropout_noise_is_n_1_rate_over_1_minus_rate():
    noise = drawn_noise(noise_probe({"type": "gaussian_dropout", "rate": 0.2}), 20_000)
    assert noise.mean() == pytest.approx(1.0, abs=0.015)  # std of the mean: 0.0035
    assert noise.var() == pytest.approx(0.25, rel=0.04)
    assert abs(np.mean(((noise - 1) / 0.5) ** 3)) < 0.1  # symmetric, as a normal is


def test_a_noise_shape_with_batch_axis_1_shares_one_mask_per_sample():
    shared = noise_probe({"type": "dropout", "rate": 0.5, "noise_shape": [1, None]})
    one_sample = drawn_noise(shared, 50)
    assert np.ptp(one_sample) < 1e-9  # every row of the sample had the same mask
    # Over samples the mask varies, and each row sees the same sequence of masks.
    means = mc_dropout_predict(shared, np.ones((3, 1)), samples=200, seed=9).mean
    assert 0 < means[0, 1] - 0.5 < 0.23
    np.testing.assert_allclose(means, means[:1].repeat(3, axis=0), rtol=1e-12)
    per_row = noise_probe({"type": "dropout", "rate": 0.5})
    assert np.ptp(drawn_noise(per_row, 50)) > 1.0


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"samples": 0}, "mc_samples"),
    ({"samples": 1001}, "mc_samples"),
    ({"samples": 2.0}, "mc_samples"),
    ({"samples": True}, "mc_samples"),
    ({"samples": 10, "seed": -1}, "seed"),
    ({"samples": 10, "max_chunk_rows": 0}, "max_chunk_rows"),
])
def test_invalid_arguments_name_the_field_and_the_rule(kwargs, field):
    kwargs = {"seed": 0, **kwargs}
    with pytest.raises(SpecError) as info:
        mc_dropout_predict(mlp(0.5), inputs(2), **kwargs)
    assert info.value.field == field
    assert "Expected" in str(info.value) and "Received" in str(info.value)
    if field == "mc_samples":
        assert "in [1, 1000]" in str(info.value)


def test_wrong_inputs_and_non_softmax_networks_are_refused():
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 8\); received"):
        mc_dropout_predict(mlp(0.5), np.ones((3, 7), dtype=np.float32), samples=5, seed=0)
    regression = build_network([{"type": "dense", "units": 2}], (8,), seed=0)
    with pytest.raises(ValueError, match="softmax"):
        mc_dropout_predict(regression, inputs(2), samples=5, seed=0)


def test_entropy_of_known_distributions():
    np.testing.assert_allclose(entropy(np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])),
                               [0.0, math.log(3)], atol=1e-15)
    assert entropy(np.array([0.5, 0.5])) == pytest.approx(math.log(2))


def test_ece_of_hand_computed_cases():
    # Two bins used out of 15: confidence 0.9 (2 rows, 1 right) and 0.6 (2 rows, both right).
    probabilities = np.array([[0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.4, 0.6]])
    labels = np.array([0, 0, 0, 1])
    expected = (2 / 4) * abs(0.5 - 0.9) + (2 / 4) * abs(1.0 - 0.6)
    assert expected_calibration_error(probabilities, labels) == pytest.approx(expected)
    confident_and_right = np.eye(3)[[0, 1, 2, 1]]
    assert expected_calibration_error(confident_and_right, np.array([0, 1, 2, 1])) == 0.0
    # A confidence exactly on a bin edge (0.6 = 9/15) belongs to the lower bin (lo, hi].
    assert expected_calibration_error(np.array([[0.6, 0.4]]), np.array([1])) == \
        pytest.approx(0.6)
    with pytest.raises(ValueError, match="expected probabilities"):
        expected_calibration_error(probabilities, labels[:3])


def test_roc_auc_equals_the_pairwise_count_with_ties():
    rng = np.random.default_rng(0)
    negative = rng.integers(0, 6, 40).astype(float)
    positive = rng.integers(2, 9, 30).astype(float)
    wins = (positive[:, None] > negative[None, :]).sum()
    ties = (positive[:, None] == negative[None, :]).sum()
    assert roc_auc(negative, positive) == pytest.approx((wins + ties / 2) / (40 * 30))
    assert roc_auc(np.array([0.1, 0.2]), np.array([0.3, 0.4])) == 1.0
    assert roc_auc(np.array([0.3, 0.4]), np.array([0.1, 0.2])) == 0.0
    assert roc_auc(np.ones(3), np.ones(5)) == 0.5
    with pytest.raises(ValueError, match="non-empty"):
        roc_auc(np.array([]), np.array([1.0]))
