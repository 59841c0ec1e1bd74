"""The job spec: what a client POSTs to /v1/jobs, validated field by field.

These pydantic models describe the JSON (and the OpenAPI schema); `JobSpec.engine_layers()`
and friends turn an accepted spec into the plain dicts the engine builds from. Validation is
strict: a string is never taken for a number, and unknown fields are errors.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from service.engine.datasets import BUILTIN_DATASETS, MAX_SEED, SPLIT_PARAMETERS
from service.interop import keras as keras_interop
from service.webhooks import urls as webhook_urls

MAX_DIM = 65_536
MAX_KERNEL = 64
MAX_COUNT = 2**31 - 1
"""Bound of every count (iterations, batch sizes, intervals): the database's 32-bit integers.
The server's configurable limits (DROPNET_MAX_ITERATIONS, ...) are usually far lower."""


def printable(text: str) -> str:
    """Names are shown and logged: no control characters (PostgreSQL cannot even store NUL)."""
    if any(unicodedata.category(char) == "Cc" for char in text):
        raise PydanticCustomError("control_characters",
                                  "must not contain control characters (NUL, tab, newline, ...)")
    return text


Count = Annotated[int, Field(ge=1, le=MAX_COUNT)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


Activation = Literal["linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax"]
Initializer = Literal["he_normal", "he_uniform", "glorot_uniform", "zeros"]
Size = Annotated[int, Field(ge=1, le=MAX_KERNEL)]
SizeOrPair = Size | Annotated[list[Size], Field(min_length=2, max_length=2)]
Rate = Annotated[float, Field(ge=0.0, lt=1.0)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


class ActivatedLayerFields(StrictModel):
    activation: Activation = "linear"
    alpha: Annotated[float, Field(ge=0.0, lt=1.0)] | None = Field(
        None, description="leaky_relu's negative slope (default 0.01)")
    kernel_initializer: Initializer | None = Field(
        None, description="default: he_normal for relu/leaky_relu, else glorot_uniform")
    bias_initializer: Initializer = "zeros"
    max_norm: Annotated[float, Field(gt=0.0, le=1e6)] | None = Field(
        None, description="cap on each unit's incoming weight vector norm")
    use_bias: bool = True


class DenseLayer(ActivatedLayerFields):
    """y = activation(x @ W + b); W: (in_features, units)."""

    type: Literal["dense"]
    units: Annotated[int, Field(ge=1, le=MAX_DIM)]
    dropconnect: Rate | None = Field(
        None, description="DropConnect rate: each weight dropped per training batch")


class Conv2DLayer(ActivatedLayerFields):
    """NCHW convolution; weight: (filters, in_channels, kh, kw)."""

    type: Literal["conv2d"]
    filters: Annotated[int, Field(ge=1, le=4096)]
    kernel_size: SizeOrPair
    stride: SizeOrPair = 1
    padding: Literal["valid", "same"] | Annotated[int, Field(ge=0, le=MAX_KERNEL)] = "valid"


class MaxPool2DLayer(StrictModel):
    type: Literal["maxpool2d"]
    pool_size: SizeOrPair = 2
    stride: SizeOrPair | None = None


class AvgPool2DLayer(StrictModel):
    type: Literal["avgpool2d"]
    pool_size: SizeOrPair = 2
    stride: SizeOrPair | None = None


class FlattenLayer(StrictModel):
    type: Literal["flatten"]


class PermuteLayer(StrictModel):
    """Reorders each sample's axes (numbered from 1, as Keras's Permute): [3, 1, 2] turns
    (H, W, C) into (C, H, W)."""

    type: Literal["permute"]
    dims: Annotated[list[Annotated[int, Field(ge=1, le=3)]], Field(min_length=1, max_length=3)]


class DropoutLayer(StrictModel):
    """Inverted dropout on the previous layer's activated output."""

    type: Literal["dropout"]
    rate: Rate
    noise_shape: Annotated[list[Annotated[int, Field(ge=1, le=MAX_DIM)] | None],
                           Field(min_length=2, max_length=4)] | None = None


class SpatialDropout2DLayer(StrictModel):
    """Drops whole channels of (C, H, W) inputs."""

    type: Literal["spatial_dropout2d"]
    rate: Rate


class GaussianDropoutLayer(StrictModel):
    """Multiplicative N(1, rate / (1 - rate)) noise."""

    type: Literal["gaussian_dropout"]
    rate: Rate


class ActivationLayer(StrictModel):
    """An activation as its own layer."""

    type: Literal["activation"]
    activation: Activation
    alpha: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None


class NamedActivationLayer(StrictModel):
    """Shorthand: {"type": "relu"} is {"type": "activation", "activation": "relu"}."""

    type: Activation
    alpha: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None


def _layer_tag(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if kind in ("linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax"):
        return "named_activation"
    return kind if isinstance(kind, str) else None


Layer = Annotated[
    Annotated[DenseLayer, Tag("dense")]
    | Annotated[Conv2DLayer, Tag("conv2d")]
    | Annotated[MaxPool2DLayer, Tag("maxpool2d")]
    | Annotated[AvgPool2DLayer, Tag("avgpool2d")]
    | Annotated[FlattenLayer, Tag("flatten")]
    | Annotated[PermuteLayer, Tag("permute")]
    | Annotated[DropoutLayer, Tag("dropout")]
    | Annotated[SpatialDropout2DLayer, Tag("spatial_dropout2d")]
    | Annotated[GaussianDropoutLayer, Tag("gaussian_dropout")]
    | Annotated[ActivationLayer, Tag("activation")]
    | Annotated[NamedActivationLayer, Tag("named_activation")],
    Discriminator(_layer_tag, custom_error_type="invalid_layer_type",
                  custom_error_message="Unknown layer type; expected one of dense, conv2d, "
                                       "maxpool2d, avgpool2d, flatten, permute, dropout, "
                                       "spatial_dropout2d, gaussian_dropout, activation, linear, "
                                       "relu, leaky_relu, sigmoid, tanh, softmax"),
]


class ModelSpec(StrictModel):
    """dropnet layers, or `{"keras": <model.to_json()>}`: the Keras Sequential config is
    translated (service/interop/keras.py) and kept beside the dropnet layers it gave."""

    keras: dict[str, Any] | None = Field(
        None, description="a Keras Sequential model's to_json() object; input_shape, layers "
                          "and dtype are then translated from it and may be omitted")
    input_shape: Annotated[list[Annotated[int, Field(ge=1, le=MAX_DIM)]],
                           Field(min_length=1, max_length=3,
                                 description="one sample's shape: [features] or "
                                             "[channels, height, width]")]
    layers: Annotated[list[Layer], Field(min_length=1)]
    dtype: Literal["float32", "float64"] = "float32"

    @model_validator(mode="before")
    @classmethod
    def _from_keras(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("keras") is None:
            return data
        return keras_model_fields(data)


_LAYER_LIST: TypeAdapter[list[Any]] = TypeAdapter(list[Layer])


def keras_model_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The model fields translated from data["keras"]. Fields also given (as in a stored
    spec) must equal the translation; a Keras config dropnet cannot translate is a
    validation error at its place inside `keras`."""
    try:
        translated = keras_interop.translate(data["keras"])
    except keras_interop.KerasConfigError as error:
        raise ValidationError.from_exception_data("ModelSpec", [InitErrorDetails(
            type=PydanticCustomError("keras_unsupported", "{message}",
                                     {"message": error.message}),
            loc=("keras", *error.path), input=error.received)]) from None
    fields = {"keras": data["keras"], "input_shape": translated.input_shape,
              "layers": translated.layers, "dtype": translated.dtype}
    for name in ("input_shape", "layers", "dtype"):
        if name in data and not _same_model_field(name, data[name], fields[name]):
            raise ValidationError.from_exception_data("ModelSpec", [InitErrorDetails(
                type=PydanticCustomError(
                    "keras_conflict", "omit {name} when keras is given: it is translated from "
                    "the Keras config (translation: {translated})",
                    {"name": name, "translated": fields[name]}),
                loc=(name,), input=data[name])])
    return fields


def _same_model_field(name: str, given: Any, translated: Any) -> bool:
    if name != "layers":
        return bool(given == translated)
    try:
        layers = _LAYER_LIST.validate_python(given)
    except ValidationError:
        return False
    return ([layer.model_dump(exclude_none=True) for layer in layers]
            == [layer.model_dump(exclude_none=True)
                for layer in _LAYER_LIST.validate_python(translated)])


# -- data -----------------------------------------------------------------------------------
# Defaults, bounds and descriptions come from the engine's table of built-in datasets; each
# class names its fields and their types (tests/jobs/test_data_specs.py checks they cover the
# table).

_SPLIT_PARAMETERS = {param["name"]: param for param in SPLIT_PARAMETERS}


def _engine_field(param: dict[str, Any]) -> Any:
    """A field with the default, [minimum, maximum] and description of an engine parameter."""
    return Field(param["default"], ge=param["minimum"], le=param["maximum"],
                 description=param["description"])


def _dataset_field(dataset: str, name: str) -> Any:
    """The field of parameter `name` of built-in dataset `dataset`."""
    [param] = [p for p in BUILTIN_DATASETS[dataset]["params"] if p["name"] == name]
    return _engine_field(param)


class DataSplit(StrictModel):
    test_fraction: float = _engine_field(_SPLIT_PARAMETERS["test_fraction"])
    split_seed: int = _engine_field(_SPLIT_PARAMETERS["split_seed"])


class DigitsData(DataSplit):
    """The 8x8 handwritten digits: input_shape [64] (flat) or [1, 8, 8] (images); optionally
    fewer training rows (`train_size`) with a share of their labels flipped (`label_noise`)."""

    dataset: Literal["digits"]
    train_size: int | None = _dataset_field("digits", "train_size")
    label_noise: float = _dataset_field("digits", "label_noise")


class SpiralsData(DataSplit):
    dataset: Literal["spirals"]
    n_samples: int = _dataset_field("spirals", "n_samples")
    n_classes: int = _dataset_field("spirals", "n_classes")
    noise: float = _dataset_field("spirals", "noise")
    seed: int = _dataset_field("spirals", "seed")


class BlobsData(DataSplit):
    dataset: Literal["blobs"]
    n_samples: int = _dataset_field("blobs", "n_samples")
    n_classes: int = _dataset_field("blobs", "n_classes")
    n_features: int = _dataset_field("blobs", "n_features")
    noise: float = _dataset_field("blobs", "noise")
    seed: int = _dataset_field("blobs", "seed")


class XorData(DataSplit):
    dataset: Literal["xor"]
    n_samples: int = _dataset_field("xor", "n_samples")
    noise: float = _dataset_field("xor", "noise")
    seed: int = _dataset_field("xor", "seed")


class UploadedData(StrictModel):
    """A dataset uploaded with POST /v1/datasets (it carries its own train/test split)."""

    dataset_id: Annotated[str, StringConstraints(min_length=1, max_length=64),
                          AfterValidator(printable)]


def _data_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return "uploaded" if "dataset_id" in value else value.get("dataset")
    return "uploaded" if isinstance(value, UploadedData) else getattr(value, "dataset", None)


DataSpec = Annotated[
    Annotated[DigitsData, Tag("digits")]
    | Annotated[SpiralsData, Tag("spirals")]
    | Annotated[BlobsData, Tag("blobs")]
    | Annotated[XorData, Tag("xor")]
    | Annotated[UploadedData, Tag("uploaded")],
    Discriminator(_data_tag, custom_error_type="invalid_dataset",
                  custom_error_message="Expected a built-in dataset name (digits, spirals, "
                                       "blobs, xor) in 'dataset', or an uploaded 'dataset_id'"),
]


# -- training -------------------------------------------------------------------------------

LearningRate = Annotated[float, Field(gt=0.0, le=1000.0)]
WeightDecay = Annotated[float, Field(ge=0.0, le=1.0)]
Epsilon = Annotated[float, Field(gt=0.0, le=1.0)]
Beta = Annotated[float, Field(ge=0.0, lt=1.0)]


class SGD(StrictModel):
    type: Literal["sgd"]
    learning_rate: LearningRate
    momentum: Beta = 0.0
    nesterov: bool = False
    weight_decay: WeightDecay = 0.0

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> SGD:
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov needs momentum > 0")
        return self


class Adagrad(StrictModel):
    type: Literal["adagrad"]
    learning_rate: LearningRate
    weight_decay: WeightDecay = 0.0
    epsilon: Epsilon = 1e-8


class RMSprop(StrictModel):
    type: Literal["rmsprop"]
    learning_rate: LearningRate
    rho: Beta = 0.9
    weight_decay: WeightDecay = 0.0
    epsilon: Epsilon = 1e-8


class Adam(StrictModel):
    type: Literal["adam"]
    learning_rate: LearningRate
    beta1: Beta = 0.9
    beta2: Beta = 0.999
    weight_decay: WeightDecay = 0.0
    epsilon: Epsilon = 1e-8


Optimizer = Annotated[SGD | Adagrad | RMSprop | Adam, Field(discriminator="type")]


class ConstantLR(StrictModel):
    type: Literal["constant"]


class StepLR(StrictModel):
    type: Literal["step"]
    every: Count
    gamma: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1


class CosineLR(StrictModel):
    type: Literal["cosine"]
    min_learning_rate: Annotated[float, Field(ge=0.0, le=1000.0)] = 0.0


LRSchedule = Annotated[ConstantLR | StepLR | CosineLR, Field(discriminator="type")]


class ConstantDropoutSchedule(StrictModel):
    """Every dropout layer keeps its configured rate."""

    type: Literal["constant"]


class StepDropoutSchedule(StrictModel):
    """Relative: each dropout layer's rate moves by `delta` every `every` iterations from its
    configured rate, clamped to [min, max]."""

    type: Literal["step"]
    every: Count
    delta: Annotated[float, Field(ge=-1.0, le=1.0)]
    min: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    max: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.95

    @model_validator(mode="after")
    def _ordered(self) -> StepDropoutSchedule:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class LinearDropoutSchedule(StrictModel):
    """Absolute: every dropout layer's rate goes from `from` to `to` over `iterations`
    (default: the whole run)."""

    type: Literal["linear"]
    from_: Rate = Field(alias="from")
    to: Rate
    iterations: Count | None = None


class CurriculumDropoutSchedule(StrictModel):
    """Relative (Morerio et al. 2017): each dropout layer's rate rises from 0 towards its
    configured rate as rate * (1 - exp(-gamma * t)); gamma = 10 / iterations is the paper's."""

    type: Literal["curriculum"]
    gamma: Annotated[float, Field(gt=0.0, le=1e6)]


DropoutSchedule = Annotated[
    ConstantDropoutSchedule | StepDropoutSchedule | LinearDropoutSchedule
    | CurriculumDropoutSchedule,
    Field(discriminator="type"),
]


class CheckpointPolicy(StrictModel):
    """How often a running job stores its full state (whichever comes first). What a client
    leaves out is filled in at submission with the server's defaults."""

    every_iterations: Count | None = None
    every_seconds: Annotated[float, Field(gt=0.0, le=86_400.0)] | None = None

    def intervals(self) -> tuple[int, float]:
        """(every_iterations, every_seconds) of a policy resolved at submission."""
        if self.every_iterations is None or self.every_seconds is None:
            raise ValueError(
                "the checkpoint policy was not resolved at submission: expected "
                "every_iterations and every_seconds, received "
                f"{self.model_dump(exclude_none=True)}")
        return self.every_iterations, self.every_seconds


class TrainingSpec(StrictModel):
    iterations: Count
    batch_size: Count
    seed: Seed = 0
    eval_every: Count | None = Field(
        None, description="evaluate the full train and test sets every K iterations "
                          "(default: iterations // 100, at least 1)")
    sampling: Literal["epoch", "random"] = "epoch"
    loss: Literal["cross_entropy", "mse"] = "cross_entropy"
    optimizer: Optimizer
    lr_schedule: LRSchedule = Field(default_factory=lambda: ConstantLR(type="constant"))
    dropout_schedule: DropoutSchedule = Field(
        default_factory=lambda: ConstantDropoutSchedule(type="constant"))
    checkpoint: CheckpointPolicy = Field(default_factory=CheckpointPolicy)

    @model_validator(mode="after")
    def _default_eval_every(self) -> TrainingSpec:
        if self.eval_every is None:
            self.eval_every = max(1, self.iterations // 100)
        return self


JobName = Annotated[str, StringConstraints(min_length=1, max_length=200),
                    AfterValidator(printable)]


def webhook_url(url: str) -> str:
    """An http(s) URL with a host (where it resolves to is checked at submission, with the
    server's allowed hosts, and again at every delivery)."""
    try:
        webhook_urls.parse(url)
    except webhook_urls.UnsafeURL as refused:
        raise PydanticCustomError("webhook_url", "{reason}: expected {expected}",
                                  {"reason": refused.reason,
                                   "expected": refused.expected}) from None
    return url


NotifyEvent = Literal["succeeded", "failed", "cancelled"]
NOTIFY_EVENTS: tuple[NotifyEvent, ...] = ("succeeded", "failed", "cancelled")


class NotifySpec(StrictModel):
    """Where to POST a signed webhook (Standard Webhooks) when the job ends in one of
    `events`."""

    url: Annotated[str, StringConstraints(min_length=1,
                                          max_length=webhook_urls.MAX_URL_LENGTH),
                   AfterValidator(webhook_url)]
    events: Annotated[list[NotifyEvent], Field(min_length=1, max_length=3)] = Field(
        default_factory=lambda: list(NOTIFY_EVENTS))

    @model_validator(mode="after")
    def _distinct_events(self) -> NotifySpec:
        if len(set(self.events)) != len(self.events):
            raise PydanticCustomError("duplicate_events",
                                      "each event at most once: expected distinct values of "
                                      "succeeded, failed, cancelled, received {events}",
                                      {"events": self.events})
        return self


class JobSpec(StrictModel):
    """A training job: the network, the data and how to train."""

    name: JobName
    model: ModelSpec
    data: DataSpec
    training: TrainingSpec
    notify: NotifySpec | None = Field(
        None, description="a webhook when the job ends (see the README's Webhooks section)")

    def engine_layers(self) -> list[dict[str, Any]]:
        return [layer.model_dump(exclude_none=True) for layer in self.model.layers]

    def engine_training(self) -> dict[str, Any]:
        """The engine's TrainingConfig fields."""
        spec = self.training.model_dump(by_alias=True, exclude_none=True,
                                        exclude={"seed", "checkpoint"})
        return spec

    def with_checkpoint_defaults(self, every_iterations: int, every_seconds: float) -> JobSpec:
        """The spec with the checkpoint intervals it leaves out set to these (the server's
        defaults, written in once, at submission)."""
        policy = self.training.checkpoint
        filled = policy.model_copy(update={
            "every_iterations": policy.every_iterations or every_iterations,
            "every_seconds": policy.every_seconds or every_seconds})
        training = self.training.model_copy(update={"checkpoint": filled})
        return self.model_copy(update={"training": training})

    def stored(self) -> dict[str, Any]:
        """The spec as accepted, defaults filled in (what GET /v1/jobs/{id} shows)."""
        spec = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        # Each layer reads best with its type first.
        spec["model"]["layers"] = [{"type": layer["type"], **layer}
                                   for layer in spec["model"]["layers"]]
        return spec
