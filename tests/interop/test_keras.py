"""Keras configs translated to dropnet, checked against real Keras 3 (torch backend).

For each model: Keras writes its config (to_json), dropnet translates and trains it for a few
iterations, dropnet's weights go into the Keras model (keras_weights), and Keras's predict must
equal dropnet's to 1e-5: that checks the translation, not only the parsing.
"""

from __future__ import annotations

import json
import os

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported: its numpy backend needs jax

import keras
import numpy as np
import pytest
from keras import constraints, layers

from service.engine.datasets import Dataset
from service.engine.network import build_network
from service.engine.training import TrainingConfig, train
from service.interop.keras import KerasConfigError, keras_weights, translate
from tests.interop.configs import (
    keras3_dense,
    keras3_input,
    keras3_layer,
    keras3_sequential,
    tf_keras2_seed_model,
)

assert keras.backend.backend() == "torch"


def seed_model() -> keras.Sequential:
    return keras.Sequential([
        keras.Input((100,)), layers.Dense(64, activation="relu"), layers.Dropout(0.5),
        layers.Dense(64, activation="relu"), layers.Dropout(0.5),
        layers.Dense(10, activation="softmax")])


def channels_last_cnn() -> keras.Sequential:
    return keras.Sequential([
        keras.Input((9, 9, 2)),
        layers.Conv2D(6, 3, strides=2, padding="same", activation="relu"),
        layers.Conv2D(4, (2, 3), activation="tanh"),
        layers.MaxPooling2D(2, strides=1),
        layers.Flatten(), layers.Dense(5, activation="softmax")])


def every_layer() -> keras.Sequential:
    """Every supported class and field, channels_last."""
    return keras.Sequential([
        keras.Input((10, 10, 3)),
        layers.Conv2D(5, 3, padding="same", activation="linear",
                      kernel_initializer="he_uniform", bias_initializer="zeros",
                      kernel_constraint=constraints.MaxNorm(2.0, axis=[0, 1, 2])),
        layers.ReLU(negative_slope=0.1),
        layers.SpatialDropout2D(0.2),
        layers.Dropout(0.1, noise_shape=(None, 1, 1, 5)),
        layers.MaxPooling2D(2),
        layers.Conv2D(4, 2, strides=(1, 2), activation="softmax", use_bias=False,
                      kernel_initializer="glorot_uniform"),
        layers.AveragePooling2D((2, 1), strides=(1, 1)),
        layers.GaussianDropout(0.2),
        layers.Softmax(axis=-1),
        layers.Flatten(),
        layers.Dense(12, activation="leaky_relu", kernel_initializer="he_normal",
                     kernel_constraint=constraints.MaxNorm(3.0)),
        layers.Activation("sigmoid"),
        layers.Dense(8, use_bias=False),
        layers.ReLU(),
        layers.Activation("tanh"),
        layers.Dropout(0.3),
        layers.Dense(4, activation="softmax")])


def channels_first_cnn() -> keras.Sequential:
    """channels_first layers and both Flatten orders of an NCHW tensor."""
    return keras.Sequential([
        keras.Input((2, 7, 6)),
        layers.Conv2D(3, 3, padding="same", activation="relu", data_format="channels_first"),
        layers.AveragePooling2D(2, data_format="channels_first"),
        layers.Flatten(data_format="channels_first"),
        layers.Dense(4, activation="softmax")])


def float64_mlp() -> keras.Sequential:
    return keras.Sequential([
        keras.Input((6,), dtype="float64"), layers.Dense(7, activation="tanh", dtype="float64"),
        layers.Dropout(0.2, dtype="float64"), layers.Dense(3, activation="softmax",
                                                            dtype="float64")])


def random_dataset(input_shape: tuple[int, ...], classes: int, dtype: str,
                   seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((96, *input_shape)).astype(dtype)
    y = rng.integers(0, classes, 96)
    return Dataset(x[:64], y[:64], x[64:], y[64:], n_classes=classes, name="random")


def trained_dropnet(model: keras.Sequential):
    translated = translate(json.loads(model.to_json()))
    network = build_network(translated.layers, translated.input_shape, seed=3,
                            dtype=translated.dtype)
    classes = network.output_shape[0]
    data = random_dataset(tuple(translated.input_shape), classes, translated.dtype)
    config = TrainingConfig.from_dict({
        "iterations": 8, "batch_size": 16, "eval_every": 8,
        "optimizer": {"type": "adam", "learning_rate": 0.05}})
    before = network.state_dict()
    train(network, data, config, on_metrics=lambda records: None)
    assert any(not np.array_equal(before[k], v) for k, v in network.state_dict().items())
    return translated, network, data


@pytest.mark.parametrize("build", [seed_model, channels_last_cnn, every_layer,
                                   channels_first_cnn, float64_mlp])
def test_keras_predict_equals_dropnet_with_dropnet_weights(build):
    model = build()
    translated, network, data = trained_dropnet(model)
    assert list(model.input_shape[1:]) == translated.input_shape
    assert {layer.compute_dtype for layer in model.layers} == {translated.dtype}
    model.set_weights(keras_weights(network))
    x = data.x_test
    expected = network.predict_proba(x)
    got = model.predict(x, verbose=0)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    # Different weights give different outputs: the comparison can fail.
    assert np.abs(model.predict(np.flip(x, axis=0), verbose=0) - expected).max() > 1e-3


def test_channels_last_images_are_permuted_to_nchw_and_back_before_flatten():
    translated = translate(json.loads(channels_last_cnn().to_json()))
    assert translated.input_shape == [9, 9, 2] and translated.data_format == "channels_last"
    kinds = [layer["type"] for layer in translated.layers]
    assert kinds == ["permute", "conv2d", "conv2d", "maxpool2d", "permute", "flatten", "dense"]
    assert translated.layers[0]["dims"] == [3, 1, 2]
    assert translated.layers[4]["dims"] == [2, 3, 1]
    assert translated.sources == [1, 1, 2, 3, 4, 4, 5]


def test_the_tf_keras2_seed_config_translates_as_keras3_writes_it():
    from_tf2 = translate(tf_keras2_seed_model())
    from_keras3 = translate(json.loads(seed_model().to_json()))
    assert from_tf2.input_shape == from_keras3.input_shape == [100]
    assert from_tf2.layers == from_keras3.layers
    assert from_tf2.dtype == "float32"


def test_tf_keras2_input_layer_and_batch_input_shape_on_the_first_layer():
    conv = {"class_name": "Conv2D", "config": {
        "name": "conv2d", "trainable": True, "dtype": "float32", "filters": 2,
        "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid",
        "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1,
        "activation": "relu", "use_bias": True,
        "kernel_initializer": {"class_name": "HeUniform", "config": {"seed": 7}},
        "bias_initializer": {"class_name": "Zeros", "config": {}},
        "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
        "kernel_constraint": {"class_name": "MaxNorm",
                              "config": {"max_value": 2, "axis": [0, 1, 2]}},
        "bias_constraint": None}}
    flatten = {"class_name": "Flatten", "config": {"name": "flatten", "trainable": True,
                                                    "dtype": "float32",
                                                    "data_format": "channels_last"}}
    dense = {"class_name": "Dense", "config": {"name": "dense", "units": 3,
                                                "activation": "softmax"}}
    with_input = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 6, 6, 1],
                                                "dtype": "float32", "sparse": False,
                                                "ragged": False, "name": "in"}},
        conv, flatten, dense]}}
    on_first = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {**conv, "config": {**conv["config"], "batch_input_shape": [None, 6, 6, 1]}},
        flatten, dense]}}
    a, b = translate(with_input), translate(on_first)
    assert a.input_shape == b.input_shape == [6, 6, 1]
    assert a.layers == b.layers
    assert a.layers[1]["kernel_initializer"] == "he_uniform" and a.layers[1]["max_norm"] == 2.0


@pytest.mark.parametrize(("layer", "field", "words"), [
    (keras3_dense(3, "softmax", kernel_regularizer={"class_name": "L2"}), "kernel_regularizer",
     "regularizers"),
    (keras3_dense(3, "softmax", activity_regularizer={"class_name": "L1"}),
     "activity_regularizer", "regularizers"),
    (keras3_dense(3, "swish"), "activation", "unknown activation"),
    (keras3_dense(3, "softmax", kernel_initializer={"class_name": "Orthogonal"}),
     "kernel_initializer", "no dropnet match"),
    (keras3_dense(3, "softmax", kernel_initializer={"class_name": "GlorotUniform",
                                                    "config": {"gain": 2}}),
     "kernel_initializer", "arguments"),
    (keras3_dense(3, "softmax", kernel_constraint={"class_name": "UnitNorm", "config": {}}),
     "kernel_constraint", "MaxNorm"),
    (keras3_dense(3, "softmax", kernel_constraint={"class_name": "MaxNorm",
                                                   "config": {"max_value": 2, "axis": 1}}),
     "kernel_constraint", "axis 0"),
    (keras3_dense(3, "softmax", lora_rank=4), "lora_rank", "not supported"),
    (keras3_dense(3, "softmax", trainable=False), "trainable", "frozen"),
    (keras3_dense(3, "softmax", dtype=keras3_layer("x")["config"]["dtype"] | {
        "config": {"name": "mixed_float16"}}), "dtype", "dtype"),
    (keras3_layer("Dropout", rate=1.5), "rate", "[0, 1)"),
    (keras3_layer("ReLU", max_value=6.0), "max_value", "capped"),
    (keras3_layer("Softmax", axis=[0, 1]), "axis", "invalid"),
])
def test_unsupported_fields_name_the_keras_layer_index_class_and_field(layer, field, words):
    config = keras3_sequential(keras3_input(4), layer, keras3_dense(3, "softmax"))
    with pytest.raises(KerasConfigError) as info:
        translate(config)
    error = info.value
    assert (error.layer_index, error.field) == (1, field)
    assert error.class_name == layer["class_name"]
    assert error.path == ("config", "layers", 1, "config", field)
    assert f"Keras layer 1 ({layer['class_name']}), field {field}" in str(error)
    assert words in str(error)


@pytest.mark.parametrize(("config", "path", "words"), [
    ([], (), "to_json"),
    ({"class_name": "Functional", "config": {"layers": []}}, ("class_name",), "Sequential"),
    ({"class_name": "Sequential", "config": {"layers": []}}, ("config", "layers"), "layers"),
    (keras3_sequential(keras3_dense(3, "softmax")), ("config", "layers", 0), "input shape"),
    (keras3_sequential(keras3_input(4), keras3_layer("LSTM", units=3)),
     ("config", "layers", 1, "class_name"), "not supported"),
    (keras3_sequential(keras3_input(4), keras3_sequential(keras3_input(4))),
     ("config", "layers", 1, "class_name"), "not supported"),
    (keras3_sequential({**keras3_input(4), "config": {"batch_shape": [None, None]}}),
     ("config", "layers", 0, "config", "batch_shape"), "fully known"),
    (keras3_sequential(keras3_input(4, 4, 2), keras3_dense(3, "softmax")),
     ("config", "layers", 1, "config"), "Flatten"),
    (keras3_sequential(keras3_input(4), keras3_input(4)),
     ("config", "layers", 1, "config", "batch_shape"), "first layer"),
])
def test_unsupported_models_say_where(config, path, words):
    with pytest.raises(KerasConfigError) as info:
        translate(config)
    assert info.value.path == path
    assert words in str(info.value)


def test_mixed_data_formats_and_channel_first_softmax_are_refused():
    mixed = keras3_sequential(
        keras3_input(6, 6, 2),
        keras3_layer("MaxPooling2D", pool_size=[2, 2], strides=None, padding="valid",
                     data_format="channels_last"),
        keras3_layer("AveragePooling2D", pool_size=[1, 1], strides=None, padding="valid",
                     data_format="channels_first"),
        keras3_layer("Flatten"), keras3_dense(3, "softmax"))
    with pytest.raises(KerasConfigError, match="one data_format") as info:
        translate(mixed)
    assert info.value.layer_index == 2 and info.value.field == "data_format"
    softmax_over_width = keras3_sequential(
        keras3_input(2, 6, 6), keras3_layer("Softmax", axis=-1))
    with pytest.raises(KerasConfigError, match="no dropnet match") as info:
        translate(softmax_over_width)
    assert info.value.field == "axis"


def test_shape_errors_point_at_the_keras_layer():
    too_big = keras3_sequential(
        keras3_input(4, 4, 1),
        keras3_layer("Conv2D", filters=2, kernel_size=[5, 5], strides=[1, 1], padding="valid",
                     data_format="channels_last", activation="relu"),
        keras3_layer("Flatten"), keras3_dense(3, "softmax"))
    with pytest.raises(KerasConfigError) as info:
        translate(too_big)
    assert (info.value.layer_index, info.value.field) == (1, "kernel_size")
    assert info.value.class_name == "Conv2D"
