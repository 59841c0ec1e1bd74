"""Built-in datasets the service offers by name, and the train/test split it applies to all data.

    digits   8x8 handwritten digits, 1,797 samples, 10 classes (UCI, via scikit-learn), pixels
             scaled to [0, 1]: (N, 64) flat or (N, 1, 8, 8) as images; optionally a smaller
             training set (`train_size`) with a share of its labels flipped (`label_noise`)
    spirals  n_classes interleaved spiral arms in 2-D
    blobs    n_classes isotropic Gaussian clusters in n_features dimensions
    xor      2-D points in [-1, 1]^2, class 1 where x * y < 0 (the signs differ), else class 0

Generated datasets draw only from `np.random.default_rng(seed)`, so the same parameters give
the same data; their classes are balanced to within one sample. Features are floats (float32
by default), labels int64 in [0, n_classes).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import validation
from .errors import SpecError
from .npz import load_npz

DATA_DIR = Path(__file__).parent / "data"
DIGITS_PATH = DATA_DIR / "digits.npz"

MAX_SAMPLES = 100_000
MAX_SEED = 2**31 - 1

_DIGITS_COUNT = 1797
_DIGITS_MAX_PIXEL = 16
_SPIRAL_TURNS = 1.25
_BLOB_CENTER_BOX = 10.0
_TRAINING_SET_STREAM = 1  # the second seed word of the training-set draws, apart from the split


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset split into train and test sets.

    x_train: (n_train, *input_shape) floats    y_train: (n_train,) int64 in [0, n_classes)
    x_test:  (n_test, *input_shape) floats     y_test:  (n_test,) int64 in [0, n_classes)
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    name: str

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if y.ndim != 1 or len(x) != len(y):
                raise SpecError(
                    "features and labels do not match",
                    field=f"y_{split}",
                    expected=f"a 1-D array with one label per row of x_{split} ({len(x)})",
                    received=y.shape,
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise SpecError(
                "train and test samples differ in shape",
                field="x_test",
                expected=f"samples of shape {self.x_train.shape[1:]}",
                received=self.x_test.shape[1:],
            )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one sample: (64,) for flat digits, (1, 8, 8) for digit images."""
        return tuple(self.x_train.shape[1:])

    def to_dtype(self, dtype: Any) -> Dataset:
        """The same dataset with features cast to the floating `dtype` (labels unchanged)."""
        target = _float_dtype(dtype)
        if self.x_train.dtype == target and self.x_test.dtype == target:
            return self
        return dataclasses.replace(
            self, x_train=self.x_train.astype(target), x_test=self.x_test.astype(target)
        )


class Split(NamedTuple):
    """The result of `train_test_split`, named so that the order cannot be mixed up."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclasses.dataclass(frozen=True)
class _Param:
    """One parameter of a built-in dataset: an integer or a number within [minimum, maximum].
    A parameter whose default is None is optional: None (the default) means "not applied"."""

    name: str
    type: str  # "integer" or "number", as in JSON Schema
    default: int | float | None
    minimum: int | float
    maximum: int | float
    description: str

    def describe(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def check(self, value: Any) -> int | float | None:
        """`value` within the bounds, or None for an optional parameter given as None."""
        if value is None and self.default is None:
            return None
        return self.check_number(value)

    def check_number(self, value: Any) -> int | float:
        """`value` within the bounds; SpecError naming this parameter otherwise."""
        if isinstance(value, np.integer | np.floating):
            value = value.item()
        if self.type == "integer":
            return validation.integer(
                value, self.name, minimum=int(self.minimum), maximum=int(self.maximum)
            )
        return validation.number(value, self.name, minimum=self.minimum, maximum=self.maximum)


def _n_samples(default: int) -> _Param:
    return _Param(
        "n_samples", "integer", default, 10, MAX_SAMPLES, "Number of samples, train and test."
    )


_SEED = _Param("seed", "integer", 0, 0, MAX_SEED, "Seed of the generator that draws the data.")
_TEST_FRACTION = _Param(
    "test_fraction", "number", 0.25, 0.01, 0.99, "Share of each class held out for testing."
)
_SPLIT_SEED = _Param("split_seed", "integer", 0, 0, MAX_SEED, "Seed of the train/test split.")

_TRAIN_SIZE = _Param(
    "train_size", "integer", None, 10, _DIGITS_COUNT,
    "Training rows kept, drawn with split_seed from those the split leaves (null: all).")
_LABEL_NOISE = _Param(
    "label_noise", "number", 0.0, 0.0, 1.0,
    "Share of the kept training labels changed to another class drawn uniformly, with "
    "split_seed; test labels stay clean.")
_TRAINING_SET_PARAMS = frozenset({_TRAIN_SIZE.name, _LABEL_NOISE.name})
"""Parameters applied after the split, to the training set only, not by the generator."""

SPLIT_PARAMETERS: list[dict[str, Any]] = [_TEST_FRACTION.describe(), _SPLIT_SEED.describe()]
"""The parameters of the stratified train/test split `load_builtin` applies to every dataset."""

_SPECS: dict[str, tuple[str, tuple[_Param, ...]]] = {
    "digits": (
        "8x8 images of handwritten digits 0-9 (1,797 samples, 10 classes, UCI via "
        "scikit-learn), pixels scaled to [0, 1]; flat (64,) or as (1, 8, 8) images. "
        "`train_size` and `label_noise` make a small training set with noisy labels.",
        (_TRAIN_SIZE, _LABEL_NOISE),
    ),
    "spirals": (
        "n_classes interleaved spiral arms in 2-D (radius up to 1), with Gaussian noise of "
        "standard deviation `noise` added to each coordinate.",
        (
            _n_samples(600),
            _Param("n_classes", "integer", 3, 2, 10, "Number of arms, one class each."),
            _Param("noise", "number", 0.05, 0.0, 1.0, "Standard deviation of the noise."),
            _SEED,
        ),
    ),
    "blobs": (
        "n_classes isotropic Gaussian clusters in n_features dimensions, centres drawn "
        "uniformly from [-10, 10]^n_features, each with standard deviation `noise`.",
        (
            _n_samples(500),
            _Param("n_classes", "integer", 3, 2, 20, "Number of clusters, one class each."),
            _Param("n_features", "integer", 2, 1, 100, "Dimension of the points."),
            _Param("noise", "number", 1.0, 0.0, 10.0, "Standard deviation of each cluster."),
            _SEED,
        ),
    ),
    "xor": (
        "2-D points in [-1, 1]^2, class 1 where x * y < 0 (the signs differ) and class 0 "
        "where x * y > 0, with Gaussian noise of standard deviation `noise` added to the "
        "coordinates after labelling.",
        (
            _n_samples(500),
            _Param("noise", "number", 0.1, 0.0, 1.0, "Standard deviation of the noise."),
            _SEED,
        ),
    ),
}

# Facts fixed by the dataset itself; None where a parameter decides.
_FIXED: dict[str, dict[str, Any]] = {
    "digits": {
        "n_samples": _DIGITS_COUNT,
        "n_classes": 10,
        "input_shape": [64],
        "image_shape": [1, 8, 8],
    },
    "spirals": {"n_samples": None, "n_classes": None, "input_shape": [2], "image_shape": None},
    "blobs": {"n_samples": None, "n_classes": None, "input_shape": None, "image_shape": None},
    "xor": {"n_samples": None, "n_classes": 2, "input_shape": [2], "image_shape": None},
}

BUILTIN_DATASETS: dict[str, dict[str, Any]] = {
    name: {
        "name": name,
        "description": description,
        **_FIXED[name],
        "params": [param.describe() for param in params],
    }
    for name, (description, params) in _SPECS.items()
}
"""Each built-in dataset, JSON-serialisable: name, description, the fixed facts (n_samples,
n_classes, input_shape, image_shape; null where a parameter decides) and `params`, a list of
{name, type, default, minimum, maximum, description}. Validation uses a private copy, so
changing this dict changes nothing."""


def load_builtin(
    name: str,
    *,
    test_fraction: float = 0.25,
    split_seed: int = 0,
    flat: bool = True,
    dtype: Any = "float32",
    **params: Any,
) -> Dataset:
    """The built-in dataset `name`, generated with `params` and split stratified into train/test.

    `flat` matters only for image datasets (digits): True gives x of shape (N, 64), False
    gives (N, 1, 8, 8) for conv nets. Other datasets are always (N, n_features).
    Raises SpecError with `field` naming the parameter at fault.
    """
    if not isinstance(name, str) or name not in _SPECS:
        raise SpecError(
            "unknown dataset",
            field="name",
            expected="one of " + ", ".join(repr(n) for n in _SPECS),
            received=name,
        )
    fraction = _check_fraction(test_fraction)
    seed = int(_SPLIT_SEED.check_number(split_seed))
    if not isinstance(flat, bool | np.bool_):
        raise SpecError("invalid value", field="flat", expected="a boolean", received=flat)
    target = _float_dtype(dtype)
    values = _check_params(name, params)

    x, y, n_classes = _GENERATORS[name](
        **{key: value for key, value in values.items() if key not in _TRAINING_SET_PARAMS})
    split = train_test_split(x, y, test_fraction=fraction, seed=seed)
    train_size, label_noise = values.get(_TRAIN_SIZE.name), values.get(_LABEL_NOISE.name)
    if train_size is not None or label_noise:
        split = noisy_subset(split, n_classes, train_size=train_size,
                             label_noise=float(label_noise or 0.0), seed=seed)
    x_train, x_test = split.x_train, split.x_test
    if name == "digits" and not flat:
        x_train = x_train.reshape(-1, 1, 8, 8)
        x_test = x_test.reshape(-1, 1, 8, 8)
    return Dataset(
        x_train=x_train.astype(target, copy=False),
        y_train=split.y_train,
        x_test=x_test.astype(target, copy=False),
        y_test=split.y_test,
        n_classes=n_classes,
        name=name,
    )


def train_test_split(
    x: np.ndarray, y: np.ndarray, *, test_fraction: float, seed: int, stratify: bool = True
) -> Split:
    """Shuffle (x, y) and hold out `test_fraction` of the samples as the test set.

    x: (N, ...), y: (N,). With `stratify`, each class c of n_c samples puts floor or ceil of
    n_c * test_fraction into the test set (the total being round(N * test_fraction) as far as
    possible), keeping at least one sample of every class for training. Both sets come out
    shuffled; the result depends only on the data, `test_fraction` and `seed`.
    Raises SpecError if either set would be empty.
    """
    fraction = _check_fraction(test_fraction)
    x, y = np.asarray(x), np.asarray(y)
    if y.ndim != 1 or x.ndim < 1 or len(x) != len(y):
        raise SpecError(
            "features and labels do not match",
            field="y",
            expected=f"a 1-D array with one label per row of x ({len(x) if x.ndim else 0})",
            received=y.shape,
        )
    rng = np.random.default_rng(seed)
    if stratify:
        test_index, train_index = _stratified_indices(y, fraction, rng)
    else:
        order = rng.permutation(len(y))
        n_test = min(math.floor(len(y) * fraction + 0.5), len(y) - 1)
        test_index, train_index = order[:n_test], order[n_test:]
    if len(test_index) == 0 or len(train_index) == 0:
        raise SpecError(
            "the split leaves an empty set",
            field="test_fraction",
            expected=f"a fraction leaving at least one test and one training sample of {len(y)}",
            received=test_fraction,
        )
    train_index = rng.permutation(train_index)
    test_index = rng.permutation(test_index)
    return Split(x[train_index], y[train_index], x[test_index], y[test_index])


def kept_training_rows(n_train: int, train_size: int | float | None) -> int:
    """How many of the split's `n_train` training rows `train_size` keeps (None: all of them).
    Raises SpecError (field train_size) when it asks for more rows than the split leaves."""
    if train_size is None:
        return n_train
    if train_size > n_train:
        raise SpecError(
            "more training rows than the split leaves",
            field=_TRAIN_SIZE.name,
            expected=f"an integer in [{_TRAIN_SIZE.minimum}, {n_train}] (the training rows "
            "left by test_fraction), or null for all of them",
            received=train_size,
        )
    return int(train_size)


def noisy_subset(split: Split, n_classes: int, *, train_size: int | float | None,
                 label_noise: float, seed: int) -> Split:
    """The split with its training set cut to `train_size` rows (drawn without replacement)
    and round(label_noise * rows) of those rows' labels changed, each to one of the other
    n_classes - 1 classes drawn uniformly. The test set is returned untouched.

    Draws come from a generator of its own, seeded by `seed` (the split's seed), so the same
    arguments give bit-identical arrays and the split itself is the one without these options.
    """
    rows = kept_training_rows(len(split.y_train), train_size)
    rng = np.random.default_rng([seed, _TRAINING_SET_STREAM])
    kept = np.sort(rng.choice(len(split.y_train), size=rows, replace=False))
    x_train, y_train = split.x_train[kept], split.y_train[kept].copy()
    flipped = rng.choice(rows, size=math.floor(rows * label_noise + 0.5), replace=False)
    y_train[flipped] = (y_train[flipped] + rng.integers(1, n_classes, size=len(flipped))
                        ) % n_classes
    return Split(x_train, y_train, split.x_test, split.y_test)


def _stratified_indices(
    y: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(test indices, train indices): per class floor(n_c * f) or that plus one.

    The extra samples go to the classes with the largest fractional parts (largest-remainder
    rounding), so the test set has round(N * f) samples unless a class must keep its last
    sample for training.
    """
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    exact = counts * fraction
    n_test = np.minimum(np.floor(exact).astype(np.int64), counts - 1)
    can_add = n_test + 1 <= np.minimum(np.ceil(exact), counts - 1)
    missing = math.floor(len(y) * fraction + 0.5) - int(n_test.sum())
    remainders = np.where(can_add, exact - n_test, -1.0)
    # Stable sort: ties go to the lower class, so the split stays deterministic.
    for c in np.argsort(-remainders, kind="stable")[: max(missing, 0)]:
        if can_add[c]:
            n_test[c] += 1
    by_class = np.argsort(inverse, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    test_parts, train_parts = [], []
    for c, start in enumerate(starts):
        members = rng.permutation(by_class[start : start + counts[c]])
        test_parts.append(members[: n_test[c]])
        train_parts.append(members[n_test[c] :])
    return np.concatenate(test_parts), np.concatenate(train_parts)


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The shipped digits, read-only: images (1797, 8, 8) uint8 in 0..16, labels (1797,) uint8."""
    archive = load_npz(DIGITS_PATH)
    images, labels = archive["images"], archive["labels"]
    if images.shape != (_DIGITS_COUNT, 8, 8) or labels.shape != (_DIGITS_COUNT,):
        raise RuntimeError(f"{DIGITS_PATH} is damaged: shapes {images.shape}, {labels.shape}")
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _digits() -> tuple[np.ndarray, np.ndarray, int]:
    images, labels = _digits_arrays()
    x = images.reshape(_DIGITS_COUNT, 64).astype(np.float64) / _DIGITS_MAX_PIXEL
    return x, labels.astype(np.int64), 10


def _balanced_labels(n_samples: int, n_classes: int) -> np.ndarray:
    """(n_samples,) int64: class c repeated n // K times, plus one for the first n % K classes."""
    counts = np.full(n_classes, n_samples // n_classes)
    counts[: n_samples % n_classes] += 1
    return np.repeat(np.arange(n_classes, dtype=np.int64), counts)


def _spirals(
    n_samples: int, n_classes: int, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Arm k: radius r ~ U[0.1, 1), angle 2*pi*(k / K + 1.25 * r), plus N(0, noise^2) noise."""
    rng = np.random.default_rng(seed)
    y = _balanced_labels(n_samples, n_classes)
    radius = 0.1 + 0.9 * rng.random(n_samples)
    angle = 2 * np.pi * (y / n_classes + _SPIRAL_TURNS * radius)
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    x += noise * rng.standard_normal(x.shape)
    return x, y, n_classes


def _blobs(
    n_samples: int, n_classes: int, n_features: int, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Centres ~ U[-10, 10]^F, one per class; x = centre[y] + N(0, noise^2 I)."""
    rng = np.random.default_rng(seed)
    y = _balanced_labels(n_samples, n_classes)
    centres = rng.uniform(-_BLOB_CENTER_BOX, _BLOB_CENTER_BOX, size=(n_classes, n_features))
    x = centres[y] + noise * rng.standard_normal((n_samples, n_features))
    return x, y, n_classes


def _xor(n_samples: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """|x|, |y| ~ U(0, 1]; class 0 in quadrants I and III, class 1 in II and IV; plus noise."""
    rng = np.random.default_rng(seed)
    y = _balanced_labels(n_samples, 2)
    magnitude = 1.0 - rng.random((n_samples, 2))  # in (0, 1], so no point sits on an axis
    first_sign = rng.choice(np.array([-1.0, 1.0]), size=n_samples)
    second_sign = np.where(y == 1, -first_sign, first_sign)
    x = magnitude * np.stack([first_sign, second_sign], axis=1)
    x += noise * rng.standard_normal(x.shape)
    return x, y, 2


_GENERATORS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray, int]]] = {
    "digits": _digits,
    "spirals": _spirals,
    "blobs": _blobs,
    "xor": _xor,
}


def _check_params(name: str, params: dict[str, Any]) -> dict[str, int | float | None]:
    """`params` checked against dataset `name`'s parameters, defaults filled in."""
    specs = {param.name: param for param in _SPECS[name][1]}
    for key in params:
        if key not in specs:
            known = ", ".join(repr(k) for k in specs)
            raise SpecError(
                f"unknown parameter for dataset {name!r}",
                field=key,
                expected=f"one of {known}" if known else "no parameters",
                received=params[key],
            )
    values = {key: spec.check(params.get(key, spec.default)) for key, spec in specs.items()}
    n_samples, n_classes = values.get("n_samples"), values.get("n_classes")
    if n_samples is not None and n_classes is not None and n_samples < 2 * n_classes:
        raise SpecError(
            "too few samples for the classes",
            field="n_samples",
            expected=f"an integer in [{2 * n_classes}, {MAX_SAMPLES}] (at least 2 per class)",
            received=n_samples,
        )
    return values


def _check_fraction(value: Any) -> float:
    return float(_TEST_FRACTION.check_number(value))


def _float_dtype(dtype: Any) -> np.dtype:
    """`dtype` as a numpy floating dtype; None is refused (numpy would read it as float64)."""
    try:
        target = None if dtype is None else np.dtype(dtype)
    except TypeError:
        target = None
    if target is None or target.kind != "f":
        raise SpecError(
            "invalid dtype",
            field="dtype",
            expected="a float dtype such as 'float32'",
            received=str(dtype),
        )
    return target
