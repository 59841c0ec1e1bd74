"""Keras `Sequential` configs (what `model.to_json()` returns) as dropnet layer dicts.

Pure functions over the JSON: Keras itself is never imported. Both Keras 3 configs
(`{"module": "keras", "class_name": "Sequential", ...}`, `batch_shape`, DTypePolicy objects)
and tf.keras 2.x configs (`batch_input_shape`, `input_dim` on the first Dense, plain dtype
strings) are read.

Layout. dropnet's convolutions and poolings work on (C, H, W) samples. A model whose image
layers say `data_format: "channels_last"` keeps its declared (H, W, C) input: the translation
puts a `permute` [3, 1, 2] before the first image layer and a `permute` [2, 3, 1] before a
Flatten, so every dropnet layer sees the values Keras's layer sees, in the same order, and a
Dense after the Flatten has Keras's kernel unchanged (see docs/interop.md). `keras_weights`
gives a trained dropnet network's parameters in Keras's `set_weights` order and layouts.

Anything that dropnet would not compute exactly as Keras does is refused with a
`KerasConfigError` naming the Keras layer's index, class and field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.engine.errors import SpecError
from service.engine.layers import Conv2D, Dense
from service.engine.network import Network, build_network

Path = tuple[str | int, ...]

DTYPES = ("float32", "float64")
CHANNELS_LAST, CHANNELS_FIRST = "channels_last", "channels_first"
TO_CHANNELS_FIRST = (3, 1, 2)
"""Where dropnet's tensor takes its axes from Keras's (H, W, C) tensor: (C, H, W)."""

ACTIVATIONS: dict[str, dict[str, Any]] = {
    "linear": {"activation": "linear"},
    "relu": {"activation": "relu"},
    "sigmoid": {"activation": "sigmoid"},
    "tanh": {"activation": "tanh"},
    "softmax": {"activation": "softmax"},
    # Keras 3's leaky_relu activation function has negative_slope=0.2.
    "leaky_relu": {"activation": "leaky_relu", "alpha": 0.2},
}

INITIALIZERS = {
    "GlorotUniform": "glorot_uniform", "glorot_uniform": "glorot_uniform",
    "HeUniform": "he_uniform", "he_uniform": "he_uniform",
    # Keras draws he_normal from a truncated normal of the same variance; dropnet untruncated.
    "HeNormal": "he_normal", "he_normal": "he_normal",
    "Zeros": "zeros", "zeros": "zeros",
}

COMMON_FIELDS = frozenset({"name", "trainable", "dtype"})
"""Fields every layer may carry; `trainable` must be true and `dtype` float32 or float64."""

INPUT_FIELDS = frozenset({"batch_input_shape", "batch_shape", "input_dim", "input_shape"})
"""tf.keras 2.x puts the model's input shape on its first layer."""

NEUTRAL_VALUES: dict[str, tuple[Any, ...]] = {
    "dilation_rate": (1, [1, 1]),
    "groups": (1,),
    "sparse": (False,),
    "ragged": (False,),
    "optional": (False,),
}
"""Fields dropnet cannot honour except at these values (Keras's defaults). Any other field not
translated is accepted only when null (e.g. kernel_regularizer, lora_rank)."""

REGULARIZER_FIELDS = ("kernel_regularizer", "bias_regularizer", "activity_regularizer")

SUPPORTED_CLASSES = ("InputLayer", "Dense", "Dropout", "SpatialDropout2D", "GaussianDropout",
                     "Conv2D", "MaxPooling2D", "AveragePooling2D", "Flatten", "Activation",
                     "ReLU", "Softmax")


class KerasConfigError(ValueError):
    """A Keras config dropnet cannot translate.

    `path` points into the Keras JSON (e.g. ("config", "layers", 3, "config",
    "kernel_regularizer")); `layer_index` and `class_name` name the Keras layer.
    """

    def __init__(self, message: str, *, path: Path = (), received: Any = None,
                 layer_index: int | None = None, class_name: str | None = None,
                 field: str | None = None, expected: str | None = None) -> None:
        self.path = path
        self.received = received
        self.layer_index = layer_index
        self.class_name = class_name
        self.field = field
        self.expected = expected
        where = ("" if layer_index is None
                 else f"Keras layer {layer_index} ({class_name or 'unknown class'})")
        if where and field:
            where += f", field {field}"
        text = f"{where}: {message}" if where else message
        if expected is not None:
            text += f"; expected {expected}"
        self.message = text
        super().__init__(text)


@dataclass(frozen=True)
class KerasModel:
    """A translated Keras model: the dropnet model spec's fields.

    `sources[i]` is the index, in the Keras config's layers, of the layer dropnet layer i comes
    from (inserted permutes point at the layer they were inserted for).
    """

    input_shape: list[int]
    layers: list[dict[str, Any]]
    dtype: str
    data_format: str | None
    sources: list[int] = field(default_factory=list)


@dataclass
class _Layer:
    """One Keras layer being read: its index, class and config, and the fields consumed."""

    index: int
    class_name: str
    config: dict[str, Any]
    used: set[str] = field(default_factory=set)

    def path(self, name: str | None = None) -> Path:
        base: Path = ("config", "layers", self.index, "config")
        return base if name is None else (*base, name)

    def error(self, message: str, name: str | None = None, *, expected: str | None = None,
              received: Any = None) -> KerasConfigError:
        return KerasConfigError(message, path=self.path(name), received=received,
                                layer_index=self.index, class_name=self.class_name,
                                field=name, expected=expected)

    def get(self, name: str, default: Any = None) -> Any:
        self.used.add(name)
        return self.config.get(name, default)


@dataclass
class _State:
    """What the translation knows between layers.

    `perm[i]` is the (1-based) axis of Keras's tensor that dropnet's tensor has at axis i;
    `rank` is the per-sample rank.
    """

    perm: tuple[int, ...]
    dtype: str | None = None
    data_format: str | None = None
    layers: list[dict[str, Any]] = field(default_factory=list)
    sources: list[int] = field(default_factory=list)

    @property
    def rank(self) -> int:
        return len(self.perm)

    def emit(self, layer: dict[str, Any], source: int) -> None:
        self.layers.append(layer)
        self.sources.append(source)

    def arrange(self, target: tuple[int, ...], source: int) -> None:
        """Permute dropnet's tensor so that its axis i is Keras's axis target[i]."""
        if target == self.perm:
            return
        dims = [self.perm.index(axis) + 1 for axis in target]
        self.emit({"type": "permute", "dims": dims}, source)
        self.perm = target


Translator = Callable[[_Layer, _State], None]
"""Reads one Keras layer's config and emits its dropnet layers into the state."""


def translate(keras_json: Any) -> KerasModel:
    """A Keras Sequential config -> dropnet's input_shape, layers and dtype.

    keras_json: the object `model.to_json()` serialises (already parsed). Raises
    KerasConfigError for anything unsupported or inconsistent, including shapes that do not
    fit (checked by planning the dropnet network without allocating weights).
    """
    layers = _sequential_layers(keras_json)
    input_shape = _input_shape(keras_json, layers)
    state = _State(perm=tuple(range(1, len(input_shape) + 1)))
    for raw_index, raw in enumerate(layers):
        layer = _read_layer(raw, raw_index)
        _check_common(layer, state, first=raw_index == 0)
        _TRANSLATORS[layer.class_name](layer, state)
        _check_leftovers(layer)
    if not state.layers:
        raise KerasConfigError("the model has no layers besides its input", path=("config",
                               "layers"), expected="at least one layer after the InputLayer")
    model = KerasModel(input_shape=input_shape, layers=state.layers,
                       dtype=state.dtype or "float32", data_format=state.data_format,
                       sources=state.sources)
    _plan(model, layers)
    return model


def keras_weights(network: Network) -> list[np.ndarray]:
    """A dropnet network's parameters in Keras's `model.set_weights` order and layouts.

    For each Dense: kernel (in_features, units) as dropnet's weight, then bias (units,).
    For each Conv2D: kernel (kh, kw, in_channels, filters) from dropnet's
    (filters, in_channels, kh, kw), then bias (filters,). Layers without bias give no bias.
    """
    weights: list[np.ndarray] = []
    for layer in network.layers:
        if isinstance(layer, Conv2D):
            weights.append(np.ascontiguousarray(layer.params["weight"].transpose(2, 3, 1, 0)))
        elif isinstance(layer, Dense):
            weights.append(layer.params["weight"].copy())
        else:
            continue
        if layer.use_bias:
            weights.append(layer.params["bias"].copy())
    return weights


# -- the model --------------------------------------------------------------------------------

def _sequential_layers(keras_json: Any) -> list[Any]:
    if not isinstance(keras_json, dict):
        raise KerasConfigError("expected the JSON object Keras's model.to_json() returns",
                               expected="an object with class_name and config",
                               received=type(keras_json).__name__)
    class_name = keras_json.get("class_name")
    if class_name != "Sequential":
        raise KerasConfigError(
            "only Sequential models are supported (functional and subclassed models are not)",
            path=("class_name",), expected="'Sequential'", received=class_name)
    config = keras_json.get("config")
    layers = config.get("layers") if isinstance(config, dict) else None
    if not isinstance(layers, list) or not layers:
        raise KerasConfigError("a Sequential config lists its layers in config.layers",
                               path=("config", "layers"), expected="a non-empty list",
                               received=layers)
    return layers


def _read_layer(raw: Any, index: int) -> _Layer:
    path: Path = ("config", "layers", index)
    if not isinstance(raw, dict) or not isinstance(raw.get("config"), dict):
        raise KerasConfigError("a layer is an object with class_name and config", path=path,
                               layer_index=index, expected="{'class_name': ..., 'config': {}}",
                               received=type(raw).__name__)
    class_name = raw.get("class_name")
    if not isinstance(class_name, str) or class_name not in _TRANSLATORS:
        raise KerasConfigError("this layer class is not supported", path=(*path, "class_name"),
                               layer_index=index, class_name=str(class_name),
                               field="class_name",
                               expected="one of " + ", ".join(SUPPORTED_CLASSES),
                               received=class_name)
    return _Layer(index, class_name, raw["config"])


def _input_shape(keras_json: dict[str, Any], layers: list[Any]) -> list[int]:
    """One sample's shape: InputLayer's batch_shape (Keras 3) or batch_input_shape
    (tf.keras 2.x), the first layer's batch_input_shape or input_dim, else the model's
    build_config."""
    candidates: list[tuple[Path, Any, bool]] = []
    first = layers[0] if isinstance(layers[0], dict) else {}
    raw_config = first.get("config")
    config = raw_config if isinstance(raw_config, dict) else {}
    base: Path = ("config", "layers", 0, "config")
    for name in ("batch_shape", "batch_input_shape"):
        if name in config:
            candidates.append(((*base, name), config[name], True))
    if "input_dim" in config:
        candidates.append(((*base, "input_dim"), [config["input_dim"]], False))
    elif "input_shape" in config:
        candidates.append(((*base, "input_shape"), config["input_shape"], False))
    model_config = keras_json.get("config")
    if isinstance(model_config, dict) and "build_input_shape" in model_config:
        candidates.append((("config", "build_input_shape"), model_config["build_input_shape"],
                           True))
    build = keras_json.get("build_config")
    if isinstance(build, dict) and "input_shape" in build:
        candidates.append((("build_config", "input_shape"), build["input_shape"], True))
    if not candidates:
        raise KerasConfigError(
            "the model does not declare its input shape",
            path=("config", "layers", 0),
            expected="an InputLayer with batch_shape, or batch_input_shape / input_dim on the "
                     "first layer")
    path, value, with_batch = candidates[0]
    index = 0 if path[:3] == ("config", "layers", 0) else None
    class_name = first.get("class_name") if index is not None else None
    shape = value[1:] if with_batch and isinstance(value, list) else value
    if (not isinstance(value, list) or not isinstance(shape, list) or not 1 <= len(shape) <= 3
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1
                       for d in shape)):
        raise KerasConfigError(
            "the input shape must be fully known", path=path, layer_index=index,
            class_name=class_name,
            expected="[null, d1, ...] with 1 to 3 positive sizes after the batch axis"
            if with_batch else "1 to 3 positive sizes", received=value)
    return list(shape)


def _plan(model: KerasModel, layers: list[Any]) -> None:
    """Shapes that do not fit, reported at the Keras layer they come from."""
    try:
        build_network(model.layers, model.input_shape, seed=0, dtype=model.dtype,
                      materialize=False)
    except SpecError as error:
        if error.layer_index is None:
            raise KerasConfigError(error.message, path=("config", "layers"),
                                   expected=error.expected, received=error.received) from None
        source = model.sources[error.layer_index]
        class_name = layers[source].get("class_name")
        name = _KERAS_FIELDS.get(error.field or "", error.field)
        field_name = name if name and name != "type" else None
        path: Path = ("config", "layers", source, "config")
        raise KerasConfigError(error.message,
                               path=path if field_name is None else (*path, field_name),
                               layer_index=source, class_name=class_name, field=field_name,
                               expected=error.expected, received=error.received) from None


_KERAS_FIELDS = {"stride": "strides", "max_norm": "kernel_constraint", "alpha": "activation"}


# -- fields shared by every layer -------------------------------------------------------------

def _check_common(layer: _Layer, state: _State, *, first: bool) -> None:
    trainable = layer.get("trainable", True)
    if trainable is not True:
        raise layer.error("dropnet trains every layer; frozen layers are not supported",
                          "trainable", expected="true", received=trainable)
    layer.get("name")
    if "dtype" in layer.config:
        dtype = _dtype_name(layer.get("dtype"))
        if dtype not in DTYPES:
            raise layer.error("unsupported dtype", "dtype", expected="float32 or float64 "
                              "(mixed precision is not supported)", received=layer.config["dtype"])
        if state.dtype is None:
            state.dtype = dtype
        elif dtype != state.dtype:
            raise layer.error("every layer must compute in the model's dtype", "dtype",
                              expected=state.dtype, received=dtype)
    for name in INPUT_FIELDS:
        if name in layer.config:
            if not first:
                raise layer.error("only the first layer may declare the input shape", name,
                                  expected="no input shape here",
                                  received=layer.config[name])
            layer.used.add(name)


def _dtype_name(value: Any) -> Any:
    """'float32' (tf.keras 2.x) or a DTypePolicy/Policy object (Keras 3) -> its name."""
    if isinstance(value, dict):
        config = value.get("config")
        return config.get("name") if isinstance(config, dict) else None
    return value


def _check_leftovers(layer: _Layer) -> None:
    for name, value in layer.config.items():
        if name in layer.used or name in COMMON_FIELDS:
            continue
        if name in REGULARIZER_FIELDS and value is not None:
            raise layer.error("regularizers are not supported (use dropout, max-norm or the "
                              "optimizer's weight_decay)", name, expected="null", received=value)
        neutral = NEUTRAL_VALUES.get(name)
        if neutral is not None:
            if value not in neutral:
                raise layer.error("not supported by dropnet", name,
                                  expected=" or ".join(map(repr, neutral)), received=value)
        elif value is not None:
            raise layer.error("this field is not supported", name, expected="null or absent",
                              received=value)


# -- field readers ----------------------------------------------------------------------------

def _activation(layer: _Layer, name: str = "activation") -> dict[str, Any]:
    value = layer.get(name, "linear")
    if value is None:
        value = "linear"
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise layer.error("unknown activation", name,
                          expected="one of " + ", ".join(ACTIVATIONS), received=value)
    return dict(ACTIVATIONS[value])


def _initializer(layer: _Layer, name: str, default: str) -> str:
    value = layer.get(name, default)
    class_name = value.get("class_name") if isinstance(value, dict) else value
    if not isinstance(class_name, str) or class_name not in INITIALIZERS:
        raise layer.error("this initializer has no dropnet match", name,
                          expected="GlorotUniform, HeUniform, HeNormal or Zeros",
                          received=value)
    config = value.get("config") if isinstance(value, dict) else None
    if isinstance(config, dict):
        # The seed is replaced by the job's training.seed; other arguments must be absent.
        extra = {k: v for k, v in config.items() if k != "seed" and v is not None}
        if extra:
            raise layer.error("initializer arguments are not supported", name,
                              expected=f"{class_name} with no arguments but seed",
                              received=value)
    return INITIALIZERS[class_name]


def _max_norm(layer: _Layer, axis: int | list[int]) -> float | None:
    value = layer.get("kernel_constraint")
    if value is None:
        return None
    config = value.get("config") if isinstance(value, dict) else None
    if (not isinstance(value, dict) or value.get("class_name") not in ("MaxNorm", "max_norm")
            or not isinstance(config, dict)):
        raise layer.error("only the MaxNorm constraint is supported", "kernel_constraint",
                          expected="MaxNorm", received=value)
    max_value = config.get("max_value", 2.0)
    given_axis = config.get("axis", 0)
    if given_axis != axis and not (isinstance(axis, int) and given_axis == [axis]):
        raise layer.error(
            "MaxNorm must cap each unit's whole incoming weight vector, as dropnet's max_norm "
            "does", "kernel_constraint", expected=f"axis {axis}", received=value)
    if (not isinstance(max_value, (int, float)) or isinstance(max_value, bool)
            or not 0 < max_value <= 1e6):
        raise layer.error("MaxNorm's max_value must be a positive number", "kernel_constraint",
                          expected="0 < max_value <= 1e6", received=value)
    if layer.config.get("bias_constraint") is not None:
        raise layer.error("bias constraints are not supported", "bias_constraint",
                          expected="null", received=layer.config["bias_constraint"])
    return float(max_value)


def _pair(layer: _Layer, name: str, default: Any = None) -> list[int]:
    value = layer.get(name, default)
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 64
                       for v in value)):
        raise layer.error("invalid value", name, expected="an integer or a pair of integers "
                          "in [1, 64]", received=layer.config.get(name))
    return value


def _rate(layer: _Layer) -> float:
    rate = layer.get("rate")
    if (not isinstance(rate, (int, float)) or isinstance(rate, bool)
            or not 0.0 <= rate < 1.0):
        raise layer.error("invalid value", "rate", expected="a number in [0, 1)", received=rate)
    return float(rate)


def _bool(layer: _Layer, name: str, default: bool) -> bool:
    value = layer.get(name, default)
    if not isinstance(value, bool):
        raise layer.error("invalid value", name, expected="true or false", received=value)
    return value


def _positive(layer: _Layer, name: str, maximum: int) -> int:
    value = layer.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise layer.error("invalid value", name, expected=f"an integer in [1, {maximum}]",
                          received=value)
    return value


def _image_layer(layer: _Layer, state: _State) -> None:
    """Checks an image layer's data_format and input rank; arranges dropnet's (C, H, W)."""
    data_format = layer.get("data_format", CHANNELS_LAST)
    if data_format is None:
        data_format = CHANNELS_LAST  # Keras's default image_data_format
    if data_format not in (CHANNELS_LAST, CHANNELS_FIRST):
        raise layer.error("invalid value", "data_format",
                          expected="channels_last or channels_first", received=data_format)
    if state.data_format is None:
        state.data_format = data_format
    elif data_format != state.data_format:
        raise layer.error("every image layer of the model must use one data_format",
                          "data_format", expected=state.data_format, received=data_format)
    if state.rank != 3:
        raise layer.error("this layer needs image input (height, width and channels)",
                          expected="a 3-D input per sample",
                          received=f"a {state.rank}-D input")
    state.arrange(TO_CHANNELS_FIRST if data_format == CHANNELS_LAST else (1, 2, 3),
                  layer.index)


def _softmax_axis_ok(state: _State, axis: int) -> bool:
    """dropnet's softmax runs over its tensor's axis 1: is that Keras's `axis`?"""
    keras_axis = axis if axis > 0 else state.rank + 1 + axis
    return state.perm[0] == keras_axis


def _check_softmax(layer: _Layer, state: _State, spec: dict[str, Any], name: str) -> None:
    if spec.get("activation") == "softmax" and not _softmax_axis_ok(state, -1):
        raise layer.error("softmax over this tensor's last axis has no dropnet match (dropnet's "
                          "softmax runs over the channels of image tensors)", name,
                          expected="softmax on flat or channels_last tensors",
                          received=spec["activation"])


# -- one function per Keras class -------------------------------------------------------------

def _input_layer(layer: _Layer, state: _State) -> None:
    if layer.index != 0:
        raise layer.error("an InputLayer must come first", expected="InputLayer at index 0",
                          received=layer.index)
    # The shape was read by _input_shape; sparse, ragged and optional must be false.


def _dense(layer: _Layer, state: _State) -> None:
    if state.rank != 1:
        raise layer.error("Keras applies Dense to the last axis of a multi-axis input; dropnet's "
                          "dense needs a flat input: put a Flatten before it",
                          expected="a flat input", received=f"a {state.rank}-D input")
    spec: dict[str, Any] = {"type": "dense", "units": _positive(layer, "units", 65_536)}
    spec.update(_activation(layer))
    spec["use_bias"] = _bool(layer, "use_bias", True)
    spec["kernel_initializer"] = _initializer(layer, "kernel_initializer", "glorot_uniform")
    spec["bias_initializer"] = _initializer(layer, "bias_initializer", "zeros")
    max_norm = _max_norm(layer, 0)
    layer.used.add("bias_constraint")
    if max_norm is not None:
        spec["max_norm"] = max_norm
    state.emit(spec, layer.index)


def _conv2d(layer: _Layer, state: _State) -> None:
    _image_layer(layer, state)
    padding = layer.get("padding", "valid")
    if padding not in ("valid", "same"):
        raise layer.error("invalid value", "padding", expected="valid or same",
                          received=padding)
    spec: dict[str, Any] = {"type": "conv2d", "filters": _positive(layer, "filters", 4096),
                            "kernel_size": _pair(layer, "kernel_size"),
                            "stride": _pair(layer, "strides", [1, 1]), "padding": padding}
    activation = _activation(layer)
    _check_softmax(layer, state, activation, "activation")
    spec.update(activation)
    spec["use_bias"] = _bool(layer, "use_bias", True)
    spec["kernel_initializer"] = _initializer(layer, "kernel_initializer", "glorot_uniform")
    spec["bias_initializer"] = _initializer(layer, "bias_initializer", "zeros")
    max_norm = _max_norm(layer, [0, 1, 2])
    layer.used.add("bias_constraint")
    if max_norm is not None:
        spec["max_norm"] = max_norm
    state.emit(spec, layer.index)


def _pooling(kind: str) -> Translator:
    def translate_pooling(layer: _Layer, state: _State) -> None:
        _image_layer(layer, state)
        padding = layer.get("padding", "valid")
        if padding != "valid":
            raise layer.error("dropnet pools only whole windows", "padding",
                              expected="valid", received=padding)
        pool_size = _pair(layer, "pool_size", [2, 2])
        strides = layer.config.get("strides")
        stride = pool_size if strides is None else _pair(layer, "strides")
        layer.used.add("strides")
        state.emit({"type": kind, "pool_size": pool_size, "stride": stride}, layer.index)
    return translate_pooling


def _flatten(layer: _Layer, state: _State) -> None:
    data_format = layer.get("data_format", CHANNELS_LAST)
    if data_format not in (None, CHANNELS_LAST, CHANNELS_FIRST):
        raise layer.error("invalid value", "data_format",
                          expected="channels_last or channels_first", received=data_format)
    target = tuple(range(1, state.rank + 1))
    if data_format == CHANNELS_FIRST and state.rank > 1:
        # Keras moves the tensor's first sample axis to the end before flattening.
        if state.data_format == CHANNELS_LAST:
            raise layer.error("a channels_first Flatten in a channels_last model flattens "
                              "(W, C, H) and has no dropnet match", "data_format",
                              expected=CHANNELS_LAST, received=data_format)
        target = (*range(2, state.rank + 1), 1)
    state.arrange(target, layer.index)
    state.emit({"type": "flatten"}, layer.index)
    state.perm = (1,)


def _dropout(layer: _Layer, state: _State) -> None:
    spec: dict[str, Any] = {"type": "dropout", "rate": _rate(layer)}
    layer.get("seed")
    noise_shape = layer.get("noise_shape")
    if noise_shape is not None:
        if (not isinstance(noise_shape, list) or len(noise_shape) != state.rank + 1
                or not all(d is None or (isinstance(d, int) and not isinstance(d, bool)
                                         and d >= 1) for d in noise_shape)):
            raise layer.error("invalid value", "noise_shape",
                              expected=f"{state.rank + 1} positive integers or nulls (the batch "
                                       "axis included)", received=noise_shape)
        spec["noise_shape"] = [noise_shape[0], *(noise_shape[axis] for axis in state.perm)]
    state.emit(spec, layer.index)


def _spatial_dropout(layer: _Layer, state: _State) -> None:
    _image_layer(layer, state)
    layer.get("seed")
    state.emit({"type": "spatial_dropout2d", "rate": _rate(layer)}, layer.index)


def _gaussian_dropout(layer: _Layer, state: _State) -> None:
    layer.get("seed")
    state.emit({"type": "gaussian_dropout", "rate": _rate(layer)}, layer.index)


def _activation_layer(layer: _Layer, state: _State) -> None:
    spec = _activation(layer)
    _check_softmax(layer, state, spec, "activation")
    state.emit({"type": "activation", **spec}, layer.index)


def _relu(layer: _Layer, state: _State) -> None:
    max_value, threshold = layer.get("max_value"), layer.get("threshold", 0.0)
    slope = layer.get("negative_slope", 0.0)
    if max_value is not None:
        raise layer.error("a capped ReLU has no dropnet match", "max_value", expected="null",
                          received=max_value)
    if threshold != 0:
        raise layer.error("a shifted ReLU has no dropnet match", "threshold", expected="0",
                          received=threshold)
    if not isinstance(slope, (int, float)) or isinstance(slope, bool) or not 0 <= slope < 1:
        raise layer.error("invalid value", "negative_slope", expected="a number in [0, 1)",
                          received=slope)
    spec = ({"activation": "relu"} if slope == 0
            else {"activation": "leaky_relu", "alpha": float(slope)})
    state.emit({"type": "activation", **spec}, layer.index)


def _softmax(layer: _Layer, state: _State) -> None:
    axis = layer.get("axis", -1)
    if (not isinstance(axis, int) or isinstance(axis, bool)
            or not -state.rank <= axis <= state.rank or axis == 0):
        raise layer.error("invalid value", "axis",
                          expected=f"one sample axis, -{state.rank}..-1 or 1..{state.rank}",
                          received=axis)
    if not _softmax_axis_ok(state, axis):
        raise layer.error("softmax over this axis has no dropnet match (dropnet's softmax runs "
                          "over the features of flat tensors and the channels of images)",
                          "axis", expected="the features or channels axis", received=axis)
    state.emit({"type": "activation", "activation": "softmax"}, layer.index)


_TRANSLATORS: dict[str, Translator] = {
    "InputLayer": _input_layer,
    "Dense": _dense,
    "Dropout": _dropout,
    "SpatialDropout2D": _spatial_dropout,
    "GaussianDropout": _gaussian_dropout,
    "Conv2D": _conv2d,
    "MaxPooling2D": _pooling("maxpool2d"),
    "AveragePooling2D": _pooling("avgpool2d"),
    "Flatten": _flatten,
    "Activation": _activation_layer,
    "ReLU": _relu,
    "Softmax": _softmax,
}
