import numpy as np
import pytest

from service.engine.errors import SpecError
from service.engine.layers.permute import Permute
from service.engine.network import build_network
from tests.engine.gradcheck import check_layer_gradients


def built(dims, input_shape):
    layer = Permute(dims)
    layer.build(input_shape, rng=np.random.default_rng(0), dtype=np.dtype(np.float64))
    return layer


@pytest.mark.parametrize(("dims", "input_shape"), [([3, 1, 2], (4, 5, 2)), ([2, 3, 1], (2, 4, 5)),
                                                   ([2, 1], (3, 7)), ([1], (6,))])
def test_forward_is_numpy_transpose_and_backward_its_inverse(dims, input_shape):
    layer = built(dims, input_shape)
    x = np.random.default_rng(1).standard_normal((3, *input_shape))
    y = layer.forward(x, training=True)
    np.testing.assert_array_equal(y, np.transpose(x, (0, *dims)))
    assert y.shape == (3, *layer.output_shape) and y.flags.c_contiguous
    check_layer_gradients(layer, x)


def test_channels_last_to_first_and_back_is_the_identity():
    to_first, to_last = built([3, 1, 2], (4, 5, 2)), built([2, 3, 1], (2, 4, 5))
    x = np.random.default_rng(2).standard_normal((2, 4, 5, 2))
    first = to_first.forward(x, training=False)
    assert first.shape == (2, 2, 4, 5)
    np.testing.assert_array_equal(first[:, 1], x[..., 1])
    np.testing.assert_array_equal(to_last.forward(first, training=False), x)


@pytest.mark.parametrize("dims", [[], [1, 1], [0, 1], [1, 3], "12", [1.0, 2.0], [True]])
def test_rejects_what_is_not_a_permutation(dims):
    with pytest.raises(SpecError, match="permutation") as info:
        Permute(dims)
    assert info.value.field == "dims"


def test_dims_must_cover_the_input_rank():
    with pytest.raises(SpecError, match="every sample axis") as info:
        build_network([{"type": "permute", "dims": [2, 1]}, {"type": "flatten"}], [2, 3, 4],
                      seed=0)
    assert info.value.layer_index == 0 and info.value.field == "dims"


def test_config_round_trips_through_build_network():
    network = build_network([{"type": "permute", "dims": [3, 1, 2]},
                             {"type": "conv2d", "filters": 2, "kernel_size": 3}], [6, 6, 1], seed=0)
    assert network.architecture()["layers"][0] == {"type": "permute", "dims": [3, 1, 2]}
    assert network.output_shape == (2, 4, 4)
