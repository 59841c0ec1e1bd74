import numpy as np
import pytest

from service.engine.errors import SpecError
from service.engine.layers.activations import softmax
from service.engine.losses import CrossEntropy, MeanSquaredError, get_loss
from tests.engine.gradcheck import assert_close, numerical_gradient


@pytest.mark.parametrize("loss", [CrossEntropy(), MeanSquaredError()])
def test_gradient_matches_central_differences(loss):
    rng = np.random.default_rng(0)
    outputs = rng.standard_normal((5, 4))
    labels = rng.integers(0, 4, 5)
    _, grad = loss.value_and_grad(outputs, labels)
    numeric = numerical_gradient(lambda: loss.value_and_grad(outputs, labels)[0], outputs)
    assert_close(grad, numeric)


@pytest.mark.parametrize("loss", [CrossEntropy(), MeanSquaredError()])
def test_sample_losses_average_to_the_value(loss):
    rng = np.random.default_rng(1)
    outputs = rng.standard_normal((6, 3))
    labels = rng.integers(0, 3, 6)
    value, _ = loss.value_and_grad(outputs, labels)
    assert loss.sample_losses(outputs, labels).mean() == pytest.approx(value, rel=1e-12)


def test_cross_entropy_value_and_stability():
    logits = np.array([[2.0, 1.0, 0.1]])
    expected = -np.log(softmax(logits)[0, 0])
    assert CrossEntropy().value_and_grad(logits, np.array([0]))[0] == pytest.approx(expected)
    # A confidently wrong network: the probability of the label underflows to 0 in float64,
    # the fused loss stays finite (about 2000).
    huge = np.array([[1000.0, -1000.0]])
    value, grad = CrossEntropy().value_and_grad(huge, np.array([1]))
    assert value == pytest.approx(2000.0)
    assert np.isfinite(grad).all()


def test_mse_against_one_hot_targets():
    outputs = np.array([[0.2, 0.8], [0.6, 0.4]])
    value, _ = MeanSquaredError().value_and_grad(outputs, np.array([1, 1]))
    assert value == pytest.approx(np.mean([0.04, 0.04, 0.36, 0.36]))


def test_float32_stays_float32():
    outputs = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    for loss in (CrossEntropy(), MeanSquaredError()):
        assert loss.value_and_grad(outputs, np.array([0, 1, 2, 0]))[1].dtype == np.float32


def test_unknown_loss():
    with pytest.raises(SpecError) as info:
        get_loss("hinge")
    assert info.value.field == "loss"
