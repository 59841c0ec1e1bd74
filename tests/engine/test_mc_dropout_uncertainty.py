"""MC-dropout uncertainty means something: a digits model is less sure, and disagrees with
itself more, on inputs unlike its training data than on the test digits."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from service.engine.datasets import Dataset, load_builtin
from service.engine.network import Network, build_network
from service.engine.training import TrainingConfig, train
from service.engine.uncertainty import MCDropoutPrediction, mc_dropout_predict, roc_auc

LAYERS = [{"type": "dense", "units": 256, "activation": "relu"},
          {"type": "dropout", "rate": 0.5},
          {"type": "dense", "units": 256, "activation": "relu"},
          {"type": "dropout", "rate": 0.5},
          {"type": "dense", "units": 10, "activation": "softmax"}]
SAMPLES = 100


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_builtin("digits")


@pytest.fixture(scope="module")
def network(digits: Dataset) -> Network:
    network = build_network(LAYERS, digits.input_shape, seed=0)
    config = TrainingConfig.from_dict({"iterations": 1000, "batch_size": 64, "eval_every": 1000,
                                       "optimizer": {"type": "adam", "learning_rate": 0.001}})
    # Small matrices: one BLAS thread is fastest, and far faster on a shared machine.
    with threadpool_limits(1):
        train(network, digits, config, on_metrics=lambda records: None)
    network.freeze()  # as the serving cache holds it
    return network


@pytest.fixture(scope="module")
def predictions(network: Network, digits: Dataset) -> dict[str, MCDropoutPrediction]:
    rng = np.random.default_rng(0)
    inputs = {
        "test": digits.x_test,
        # Pixels are in [0, 1]: noise images of the same range, and each test digit with its
        # 64 pixels permuted (the same ink, no shape).
        "noise": rng.random(digits.x_test.shape, dtype=np.float32),
        "shuffled": np.stack([row[rng.permutation(row.size)] for row in digits.x_test]),
    }
    with threadpool_limits(1):
        return {name: mc_dropout_predict(network, x, samples=SAMPLES, seed=0)
                for name, x in inputs.items()}


@pytest.mark.parametrize("kind", ["noise", "shuffled"])
def test_out_of_distribution_inputs_have_higher_entropy_and_mutual_information(predictions,
                                                                                kind):
    test, other = predictions["test"], predictions[kind]
    assert other.entropy.mean() > 2 * test.entropy.mean()
    assert other.mutual_information.mean() > 2 * test.mutual_information.mean()
    assert roc_auc(test.entropy, other.entropy) >= 0.9
    assert roc_auc(test.mutual_information, other.mutual_information) >= 0.9


def test_mc_mean_accuracy_is_within_one_point_of_the_deterministic_one(predictions, network,
                                                                       digits):
    deterministic = (network.predict(digits.x_test) == digits.y_test).mean()
    mc = (predictions["test"].predicted == digits.y_test).mean()
    assert deterministic > 0.95  # a model worth asking
    assert abs(mc - deterministic) <= 0.01
