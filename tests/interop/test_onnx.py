"""ONNX export checked with the onnx package's checker and onnxruntime (float64 convolutions,
which onnxruntime's CPU provider does not implement, with onnx's reference evaluator)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx.reference import ReferenceEvaluator

from service.engine.datasets import Dataset
from service.engine.network import build_network
from service.engine.training import TrainingConfig, train
from service.interop.onnx import OPSET, export_network

MLP = ([{"type": "dense", "units": 16, "activation": "relu"},
        {"type": "dropout", "rate": 0.5},
        {"type": "dense", "units": 8, "activation": "leaky_relu", "alpha": 0.1},
        {"type": "gaussian_dropout", "rate": 0.2},
        {"type": "dense", "units": 8, "activation": "sigmoid", "use_bias": False},
        {"type": "tanh"},
        {"type": "dense", "units": 3, "activation": "softmax"}], [5])
CNN = ([{"type": "conv2d", "filters": 4, "kernel_size": 3, "stride": 2, "padding": "same",
         "activation": "relu"},
        {"type": "spatial_dropout2d", "rate": 0.3},
        {"type": "conv2d", "filters": 3, "kernel_size": [2, 3], "stride": [1, 2], "padding": 1,
         "activation": "tanh", "use_bias": False},
        {"type": "maxpool2d", "pool_size": 2, "stride": 1},
        {"type": "avgpool2d", "pool_size": [1, 2]},
        {"type": "leaky_relu", "alpha": 0.2},
        {"type": "flatten"},
        {"type": "dense", "units": 4, "activation": "softmax"}], [2, 11, 10])
CHANNELS_LAST = ([{"type": "permute", "dims": [3, 1, 2]},
                  {"type": "conv2d", "filters": 3, "kernel_size": 3, "padding": "same",
                   "activation": "softmax"},
                  {"type": "permute", "dims": [2, 3, 1]},
                  {"type": "flatten"},
                  {"type": "dense", "units": 3, "activation": "softmax"}], [6, 5, 2])


def trained(layers, input_shape, dtype):
    network = build_network(layers, input_shape, seed=1, dtype=dtype)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((80, *input_shape)).astype(dtype)
    y = rng.integers(0, network.output_shape[0], 80)
    data = Dataset(x[:60], y[:60], x[60:], y[60:], n_classes=network.output_shape[0], name="r")
    train(network, data, TrainingConfig.from_dict({
        "iterations": 6, "batch_size": 20, "eval_every": 6,
        "optimizer": {"type": "adam", "learning_rate": 0.05}}), on_metrics=lambda r: None)
    return network, data.x_test


def checked_model(network) -> bytes:
    data = export_network(network)
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)]
    assert OPSET >= 17
    (graph_input,) = model.graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert graph_input.name == "input"
    assert dims[0].dim_param == "batch"
    assert [d.dim_value for d in dims[1:]] == list(network.input_shape)
    assert [o.name for o in model.graph.output] == ["probabilities"]
    expected_type = onnx.helper.np_dtype_to_tensor_dtype(network.dtype)
    assert graph_input.type.tensor_type.elem_type == expected_type
    return data


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", [MLP, CHANNELS_LAST, CNN], ids=["mlp", "channels_last", "cnn"])
def test_onnxruntime_probabilities_equal_dropnet(case, dtype):
    network, x = trained(*case, dtype)
    data = checked_model(network)
    expected = network.predict_proba(x)
    has_conv = any(layer["type"] == "conv2d" for layer in case[0])
    if dtype == "float64" and has_conv:
        # onnxruntime's CPU provider has no float64 Conv kernel: onnx's reference runs it.
        got = ReferenceEvaluator(data).run(None, {"input": x})[0]
    else:
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        got = session.run(["probabilities"], {"input": x})[0]
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert not np.allclose(expected, expected[::-1], atol=1e-3)  # inputs give distinct rows


def test_the_batch_axis_is_dynamic():
    network, x = trained(*CNN, "float32")
    session = onnxruntime.InferenceSession(export_network(network),
                                           providers=["CPUExecutionProvider"])
    for rows in (1, 7, 20):
        got = session.run(None, {"input": x[:rows]})[0]
        np.testing.assert_allclose(got, network.predict_proba(x[:rows]), atol=1e-5)


def test_dropout_layers_are_identity_nodes():
    network, _ = trained(*MLP, "float32")
    model = onnx.load_from_string(export_network(network))
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("Identity") == 3  # two dropout layers and the output
    assert "Dropout" not in ops
