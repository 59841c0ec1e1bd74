"""A trained dropnet Network as an ONNX model (opset 17), built with the `onnx` helper API.

The `onnx` package is optional (the `onnx` extra): `export_network` raises MissingExtra when it
is not installed, which the API answers with 501.

Graph: one input "input" of shape ["batch", *network.input_shape] and one output
"probabilities" of shape ["batch", *network.output_shape], both in the network's dtype
(float32 or float64); the batch axis is dynamic. Layers map to standard operators:

    dense            Gemm(x, W, b)  (MatMul without bias), W: (in_features, units)
    conv2d           Conv(x, W, b) with explicit pads [top, left, bottom, right]
    maxpool2d        MaxPool      avgpool2d  AveragePool (whole windows, no padding)
    flatten          Flatten(axis=1)          permute  Transpose(perm=[0, *dims])
    dropout layers   Identity (inference)
    activations      Relu, LeakyRelu(alpha), Sigmoid, Tanh, Softmax(axis=1); linear adds none
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np

from service.engine import functional
from service.engine.checkpoint import load_model
from service.engine.layers import (
    ActivationLayer,
    AvgPool2D,
    Conv2D,
    Dense,
    DropoutBase,
    Flatten,
    Layer,
    MaxPool2D,
    Permute,
)
from service.engine.layers.activations import Activation
from service.engine.network import Network
from service.errors import MissingExtra

OPSET = 17
IR_VERSION = 8
"""The IR version opset 17 came with: runtimes from 2022 on load the model."""
INPUT_NAME, OUTPUT_NAME = "input", "probabilities"
MEDIA_TYPE = "application/onnx"


def require_onnx() -> ModuleType:
    """The `onnx` package, or MissingExtra naming the extra that installs it."""
    try:
        return importlib.import_module("onnx")
    except ImportError:
        raise MissingExtra(
            "ONNX export needs the onnx package: pip install 'dropnet[onnx]'") from None


def export_model_file(data: bytes) -> bytes:
    """A stored model file (save_model's .npz bytes) -> the serialized ONNX model."""
    network, _ = load_model(data)
    return export_network(network)


def export_network(network: Network, *, graph_name: str = "dropnet") -> bytes:
    """`network` (inference mode: dropout is the identity) as a serialized ONNX ModelProto."""
    onnx = require_onnx()
    helper = onnx.helper
    elem_type = helper.np_dtype_to_tensor_dtype(network.dtype)
    graph = _GraphBuilder(onnx, network.dtype)
    current = INPUT_NAME
    for index, layer in enumerate(network.layers):
        current = graph.layer(index, layer, current)
    graph.nodes.append(helper.make_node("Identity", [current], [OUTPUT_NAME],
                                        name="output"))
    model = helper.make_model(
        helper.make_graph(
            graph.nodes, graph_name,
            [helper.make_tensor_value_info(INPUT_NAME, elem_type,
                                           ["batch", *network.input_shape])],
            [helper.make_tensor_value_info(OUTPUT_NAME, elem_type,
                                           ["batch", *network.output_shape])],
            initializer=graph.initializers),
        opset_imports=[helper.make_opsetid("", OPSET)], producer_name="dropnet",
        ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


class _GraphBuilder:
    """Nodes and initializers, one layer at a time; tensor names are "layers.{i}.*"."""

    def __init__(self, onnx: ModuleType, dtype: np.dtype) -> None:
        self.onnx = onnx
        self.dtype = dtype
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def node(self, op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=output,
                                                     **attributes))
        return output

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(self.onnx.numpy_helper.from_array(
            np.ascontiguousarray(value, dtype=self.dtype), name=name))
        return name

    def layer(self, index: int, layer: Layer, x: str) -> str:
        """The nodes computing `layer` from tensor `x`; returns the output tensor's name."""
        prefix = f"layers.{index}"
        if isinstance(layer, Dense):
            inputs = [x, self.constant(f"{prefix}.weight", layer.params["weight"])]
            if layer.use_bias:
                inputs.append(self.constant(f"{prefix}.bias", layer.params["bias"]))
                z = self.node("Gemm", inputs, f"{prefix}.linear")
            else:
                z = self.node("MatMul", inputs, f"{prefix}.linear")
            return self.activation(layer.activation, z, prefix)
        if isinstance(layer, Conv2D):
            return self.conv(layer, x, prefix)
        if isinstance(layer, (MaxPool2D, AvgPool2D)):
            op = "MaxPool" if isinstance(layer, MaxPool2D) else "AveragePool"
            return self.node(op, [x], f"{prefix}.pool", kernel_shape=list(layer.pool_size),
                             strides=list(layer.stride))
        if isinstance(layer, Flatten):
            return self.node("Flatten", [x], f"{prefix}.flatten", axis=1)
        if isinstance(layer, Permute):
            return self.node("Transpose", [x], f"{prefix}.permute", perm=[0, *layer.dims])
        if isinstance(layer, DropoutBase):
            return self.node("Identity", [x], f"{prefix}.dropout")
        if isinstance(layer, ActivationLayer):
            return self.activation(layer.activation, x, prefix)
        raise TypeError(f"expected a dropnet layer ONNX export knows, received "
                        f"{type(layer).__name__}")

    def conv(self, layer: Conv2D, x: str, prefix: str) -> str:
        assert layer.input_shape is not None
        _, height, width = layer.input_shape
        top, bottom, left, right = functional.resolve_padding(
            layer.padding, (height, width), layer.kernel_size, layer.stride)
        inputs = [x, self.constant(f"{prefix}.weight", layer.params["weight"])]
        if layer.use_bias:
            inputs.append(self.constant(f"{prefix}.bias", layer.params["bias"]))
        z = self.node("Conv", inputs, f"{prefix}.conv", kernel_shape=list(layer.kernel_size),
                      strides=list(layer.stride), pads=[top, left, bottom, right])
        return self.activation(layer.activation, z, prefix)

    def activation(self, activation: Activation, x: str, prefix: str) -> str:
        name = activation.name
        output = f"{prefix}.{name}"
        if name == "linear":
            return x
        if name == "relu":
            return self.node("Relu", [x], output)
        if name == "leaky_relu":
            return self.node("LeakyRelu", [x], output,
                             alpha=float(activation.config()["alpha"]))
        if name == "sigmoid":
            return self.node("Sigmoid", [x], output)
        if name == "tanh":
            return self.node("Tanh", [x], output)
        if name == "softmax":
            return self.node("Softmax", [x], output, axis=1)
        raise TypeError(f"expected an activation ONNX export knows, received {name!r}")
