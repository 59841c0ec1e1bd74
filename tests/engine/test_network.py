import numpy as np
import pytest

from service.engine.errors import SpecError
from service.engine.network import build_network
from tests.engine.gradcheck import assert_close, numerical_gradient

MLP = [
    {"type": "dense", "units": 6, "activation": "tanh"},
    {"type": "dropout", "rate": 0.5},
    {"type": "dense", "units": 3, "activation": "softmax"},
]


def test_keys_shapes_and_state_round_trip():
    net = build_network(MLP, (4,), seed=0)
    state = net.state_dict()
    assert set(state) == {"layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"}
    assert state["layers.0.weight"].shape == (4, 6)
    assert set(net.grads()) == set(state)
    other = build_network(MLP, (4,), seed=1)
    other.load_state_dict(state)
    for key, value in other.state_dict().items():
        np.testing.assert_array_equal(value, state[key])
    state["layers.0.weight"][:] = 0  # a copy: the network is untouched
    assert net.parameters()["layers.0.weight"].any()
    assert net.parameter_count() == 4 * 6 + 6 + 6 * 3 + 3


def test_load_state_dict_rejects_wrong_keys_and_shapes():
    net = build_network(MLP, (4,), seed=0)
    with pytest.raises(ValueError, match="missing"):
        net.load_state_dict({})
    bad = net.state_dict()
    bad["layers.0.weight"] = np.zeros((5, 6))
    with pytest.raises(ValueError, match="shape"):
        net.load_state_dict(bad)


def test_same_seed_same_weights_other_seed_other_weights():
    a = build_network(MLP, (4,), seed=3).state_dict()
    b = build_network(MLP, (4,), seed=3).state_dict()
    c = build_network(MLP, (4,), seed=4).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["layers.0.weight"], c["layers.0.weight"])


def check_network_gradients(net, x, labels, *, training):
    """The network's dx and parameter gradients through the fused cross-entropy match
    central differences."""
    from service.engine.losses import CrossEntropy

    loss = CrossEntropy()

    def value() -> float:
        return loss.value_and_grad(net.forward(x, training=training, logits=True), labels)[0]

    _, grad = loss.value_and_grad(net.forward(x, training=training, logits=True), labels)
    dx = net.backward(grad, logits=True, need_input_grad=True).copy()
    grads = {k: v.copy() for k, v in net.grads().items()}
    assert_close(dx, numerical_gradient(value, x))
    for key, param in net.parameters().items():
        assert_close(grads[key], numerical_gradient(value, param))


def test_whole_network_gradient_through_fused_cross_entropy():
    layers = [
        {"type": "conv2d", "filters": 2, "kernel_size": 3, "padding": "same",
         "activation": "relu"},
        {"type": "maxpool2d", "pool_size": 2},
        {"type": "flatten"},
        {"type": "dense", "units": 5, "activation": "sigmoid"},
        {"type": "dense", "units": 3, "activation": "softmax"},
    ]
    net = build_network(layers, (1, 4, 4), seed=0, dtype="float64")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 4, 4))
    check_network_gradients(net, x, np.array([0, 2]), training=False)


@pytest.mark.parametrize(("activation", "pool"), [
    ("tanh", {"pool_size": 2}),
    ("relu", {"pool_size": 3, "stride": 1}),
    ("leaky_relu", {"pool_size": 2, "stride": (2, 1)}),
])
def test_gradient_through_a_pooling_that_folds_the_activation_derivative(activation, pool):
    layers = [
        {"type": "conv2d", "filters": 3, "kernel_size": 3, "activation": activation},
        {"type": "maxpool2d", **pool},
        {"type": "conv2d", "filters": 2, "kernel_size": 2, "activation": activation},
        {"type": "maxpool2d", "pool_size": 2},
        {"type": "flatten"},
        {"type": "dense", "units": 3, "activation": "softmax"},
    ]
    net = build_network(layers, (2, 9, 8), seed=0, dtype="float64")
    assert net._folded_pools == {1, 3}
    x = np.random.default_rng(0).standard_normal((2, 2, 9, 8))
    check_network_gradients(net, x, np.array([0, 2]), training=True)


def test_logits_skip_a_separate_softmax_layer():
    net = build_network([{"type": "dense", "units": 3}, {"type": "softmax"}], (2,), seed=0)
    x = np.ones((1, 2), dtype=np.float32)
    logits = net.forward(x, training=False, logits=True).copy()
    probs = net.forward(x, training=False)
    np.testing.assert_allclose(probs, np.exp(logits) / np.exp(logits).sum(), rtol=1e-6)


def test_predict_proba_is_batched_inference_and_returns_a_new_array():
    net = build_network(MLP, (4,), seed=0)
    x = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
    p = net.predict_proba(x, batch_size=3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(p, net.predict_proba(x))  # dropout off: deterministic
    np.testing.assert_array_equal(net.predict(x), p.argmax(axis=1))
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 4\)"):
        net.predict_proba(np.ones((2, 5), dtype=np.float32))


def test_architecture_rebuilds_the_network():
    net = build_network(MLP, (4,), seed=0)
    arch = net.architecture()
    again = build_network(arch["layers"], arch["input_shape"], seed=0, dtype=arch["dtype"])
    assert again.architecture() == arch


@pytest.mark.parametrize(("layers", "input_shape", "index", "field"), [
    ([{"type": "dense", "units": 3}, {"type": "dropout", "rate": 1.5}], (4,), 1, "rate"),
    ([{"type": "dense"}], (4,), 0, "units"),
    ([{"type": "dense", "units": 3, "colour": "red"}], (4,), 0, "colour"),
    ([{"type": "lstm", "units": 3}], (4,), 0, "type"),
    ([{"units": 3}], (4,), 0, "type"),
    (["dense"], (4,), 0, None),
    ([{"type": "dense", "units": 3}], (1, 8, 8), 0, "type"),
    ([{"type": "conv2d", "filters": 4, "kernel_size": 9}], (1, 8, 8), 0, "kernel_size"),
    ([{"type": "flatten"}, {"type": "relu", "activation": "tanh"}], (1, 8, 8), 1, "activation"),
])
def test_invalid_specs_carry_layer_index_and_field(layers, input_shape, index, field):
    with pytest.raises(SpecError) as info:
        build_network(layers, input_shape, seed=0)
    assert info.value.layer_index == index
    assert info.value.field == field
    assert f"layers[{index}]" in str(info.value)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"layers": [], "input_shape": (4,)}, "layers"),
    ({"layers": MLP, "input_shape": (0,)}, "input_shape"),
    ({"layers": MLP, "input_shape": (1, 2, 3, 4)}, "input_shape"),
    ({"layers": MLP, "input_shape": (4,), "dtype": "float16"}, "dtype"),
    ({"layers": MLP, "input_shape": (4,), "seed": -1}, "seed"),
])
def test_invalid_network_arguments(kwargs, field):
    kwargs = {"seed": 0, **kwargs}
    with pytest.raises(SpecError) as info:
        build_network(**kwargs)
    assert info.value.field == field
    assert info.value.layer_index is None


def test_empty_conv_output_names_the_numbers():
    with pytest.raises(SpecError) as info:
        build_network([{"type": "conv2d", "filters": 4, "kernel_size": 7}], (1, 5, 5), seed=0)
    assert "7" in str(info.value) and "5" in str(info.value)


def test_shape_only_networks_count_parameters_without_allocating_them():
    import tracemalloc

    layers = [{"type": "conv2d", "filters": 4096, "kernel_size": 3, "padding": "same"},
              {"type": "flatten"},
              {"type": "dense", "units": 65536}, {"type": "dense", "units": 10}]
    tracemalloc.start()
    plan = build_network(layers, (64, 32, 32), seed=0, materialize=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    expected = (4096 * 64 * 9 + 4096) + (4096 * 32 * 32 * 65536 + 65536) + (65536 * 10 + 10)
    assert plan.parameter_count() == expected  # 275 billion: over a terabyte in float32
    assert peak < 10 * 2**20


CONV_MLP = [
    {"type": "conv2d", "filters": 3, "kernel_size": 3, "activation": "relu"},
    {"type": "maxpool2d", "pool_size": 2},
    {"type": "flatten"},
    {"type": "dense", "units": 32, "activation": "relu"},
    {"type": "dropout", "rate": 0.5},
    {"type": "dense", "units": 4, "activation": "softmax"},
]


def test_a_frozen_network_predicts_as_before_one_row_or_many():
    net = build_network(CONV_MLP, (1, 8, 8), seed=3, dtype="float64")
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8))
    expected = net.predict_proba(x)
    expected_rows = [net.predict_proba(x[i : i + 1]) for i in range(5)]
    net.freeze()
    np.testing.assert_allclose(net.predict_proba(x), expected, rtol=1e-12)
    for i, row in enumerate(expected_rows):  # one row: the transposed weights' path
        np.testing.assert_allclose(net.predict_proba(x[i : i + 1]), row, rtol=1e-12)


def test_a_frozen_network_frees_its_gradients_and_refuses_to_train():
    net = build_network(MLP, (4,), seed=0)
    net.freeze()
    assert net.grads() == {}
    assert all(layer.grads == {} for layer in net.layers)
    x = np.ones((2, 4), dtype=np.float32)
    with pytest.raises(RuntimeError, match="frozen for inference"):
        net.forward(x, training=True)
    with pytest.raises(RuntimeError, match="frozen for inference"):
        net.backward(np.ones((2, 3), dtype=np.float32))


def test_loading_weights_into_a_frozen_network_refreshes_its_inference_copies():
    frozen = build_network(MLP, (4,), seed=0)
    frozen.freeze()
    x = np.random.default_rng(1).standard_normal((1, 4)).astype(np.float32)
    before = frozen.predict_proba(x)
    other = build_network(MLP, (4,), seed=1)
    frozen.load_state_dict(other.state_dict())
    after = frozen.predict_proba(x)
    np.testing.assert_allclose(after, other.predict_proba(x), rtol=1e-6)
    assert not np.allclose(after, before)
