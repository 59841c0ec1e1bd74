"""Keras configs written out in the exact JSON formats Keras produces, without Keras.

`tf_keras2_*` follow tf.keras 2.x's to_json() (batch_input_shape, input_dim, plain dtype
strings, initializers without "module"); `keras3_*` follow Keras 3's (module keys,
batch_shape, DTypePolicy objects).
"""

from __future__ import annotations

from typing import Any


def tf_keras2_dense(units: int, activation: str, *, name: str,
                    **extra: Any) -> dict[str, Any]:
    return {"class_name": "Dense", "config": {
        "name": name, "trainable": True, "dtype": "float32", "units": units,
        "activation": activation, "use_bias": True,
        "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
        "bias_initializer": {"class_name": "Zeros", "config": {}},
        "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
        "kernel_constraint": None, "bias_constraint": None, **extra}}


def tf_keras2_dropout(rate: float, *, name: str) -> dict[str, Any]:
    return {"class_name": "Dropout", "config": {"name": name, "trainable": True,
                                                "dtype": "float32", "rate": rate,
                                                "noise_shape": None, "seed": None}}


def tf_keras2_seed_model() -> dict[str, Any]:
    """The seed's model as tf.keras 2.x wrote it: Dense(64, relu, input_dim=100), Dropout 0.5,
    Dense(64, relu), Dropout 0.5, Dense(10, softmax)."""
    return {"class_name": "Sequential", "keras_version": "2.15.0", "backend": "tensorflow",
            "config": {"name": "sequential", "layers": [
                tf_keras2_dense(64, "relu", name="dense", input_dim=100,
                                batch_input_shape=[None, 100]),
                tf_keras2_dropout(0.5, name="dropout"),
                tf_keras2_dense(64, "relu", name="dense_1"),
                tf_keras2_dropout(0.5, name="dropout_1"),
                tf_keras2_dense(10, "softmax", name="dense_2")]}}


def keras3_policy(dtype: str = "float32") -> dict[str, Any]:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": dtype},
            "registered_name": None}


def keras3_layer(class_name: str, dtype: str = "float32", **config: Any) -> dict[str, Any]:
    return {"module": "keras.layers", "class_name": class_name,
            "config": {"name": class_name.lower(), "trainable": True,
                       "dtype": keras3_policy(dtype), **config},
            "registered_name": None}


def keras3_input(*shape: int, dtype: str = "float32") -> dict[str, Any]:
    return {"module": "keras.layers", "class_name": "InputLayer",
            "config": {"batch_shape": [None, *shape], "dtype": dtype, "sparse": False,
                       "ragged": False, "name": "input_layer", "optional": False},
            "registered_name": None}


def keras3_sequential(*layers: dict[str, Any]) -> dict[str, Any]:
    return {"module": "keras", "class_name": "Sequential",
            "config": {"name": "sequential", "trainable": True, "dtype": keras3_policy(),
                       "layers": list(layers)},
            "registered_name": None, "compile_config": None}


def keras3_initializer(class_name: str) -> dict[str, Any]:
    return {"module": "keras.initializers", "class_name": class_name,
            "config": {"seed": None} if class_name != "Zeros" else {}, "registered_name": None}


def keras3_conv(filters: int, kernel: int, *, strides: int = 1, padding: str = "valid",
                activation: str = "relu", data_format: str = "channels_last",
                **extra: Any) -> dict[str, Any]:
    config = {"filters": filters, "kernel_size": [kernel, kernel],
              "strides": [strides, strides], "padding": padding, "data_format": data_format,
              "dilation_rate": [1, 1], "groups": 1, "activation": activation, "use_bias": True,
              "kernel_initializer": keras3_initializer("GlorotUniform"),
              "bias_initializer": keras3_initializer("Zeros"), "kernel_regularizer": None,
              "bias_regularizer": None, "activity_regularizer": None,
              "kernel_constraint": None, "bias_constraint": None}
    return keras3_layer("Conv2D", **{**config, **extra})


def keras3_dense(units: int, activation: str, **extra: Any) -> dict[str, Any]:
    config = {"units": units, "activation": activation, "use_bias": True,
              "kernel_initializer": keras3_initializer("GlorotUniform"),
              "bias_initializer": keras3_initializer("Zeros"), "kernel_regularizer": None,
              "bias_regularizer": None, "kernel_constraint": None, "bias_constraint": None,
              "quantization_config": None}
    return keras3_layer("Dense", **{**config, **extra})


def keras3_digits_cnn() -> dict[str, Any]:
    """A small channels_last CNN for the 8x8 digits: Conv2D(6, 3, strides 2, same) relu,
    MaxPooling2D(2, strides 1), Flatten, Dense(10, softmax)."""
    return keras3_sequential(
        keras3_input(8, 8, 1),
        keras3_conv(6, 3, strides=2, padding="same"),
        keras3_layer("MaxPooling2D", pool_size=[2, 2], padding="valid", strides=[1, 1],
                     data_format="channels_last"),
        keras3_layer("Flatten", data_format="channels_last"),
        keras3_dense(10, "softmax"))
