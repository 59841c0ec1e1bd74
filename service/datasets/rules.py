"""The rules every uploaded dataset follows, whatever its format, and how a broken one is told.

x: (N, F) or (N, C, H, W) float32, all finite; y: (N,) int64 in [0, n_classes), where
n_classes = max label + 1; train and test rows within UploadLimits. Every failure is an
InvalidInput (422) whose detail `path` names the culprit: "file", "file.x_train",
"file.line 17", "label_column", "test_fraction", "split_seed".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from service.engine import validation
from service.engine.datasets import SPLIT_PARAMETERS, Dataset, train_test_split
from service.engine.errors import SpecError
from service.errors import ErrorDetail, InvalidInput, spec_detail

MAX_NAME_CHARS = 200
MAX_LISTED = 10
"""Problems, columns or members named in one error at most."""

_PREVIEW_CHARS = 40
_SPLIT_BOUNDS = {param["name"]: param for param in SPLIT_PARAMETERS}


@dataclass(frozen=True)
class UploadLimits:
    """How much an upload may hold; anything beyond is refused before it is decompressed."""

    max_rows: int = 1_000_000  # train + test rows
    max_features: int = 100_000  # values per sample
    max_uncompressed_bytes: int = 512 * 1024 * 1024
    max_compression_ratio: float = 200.0
    max_classes: int = 10_000
    max_image_files: int = 100_000  # files in a zip of image folders
    max_image_archive_bytes: int = 256 * 1024 * 1024  # their declared uncompressed sizes, summed
    max_image_pixels: int = 16_777_216  # width x height of one image
    max_image_decoded_bytes: int = 512 * 1024 * 1024  # x_train and x_test as float32


DEFAULT_LIMITS = UploadLimits()  # frozen, so one shared default is safe


def invalid(path: str, message: str, *, expected: str | None = None, received: Any = None,
            type: str = "invalid") -> InvalidInput:
    return InvalidInput(message, [ErrorDetail(path, message, type=type, expected=expected,
                                              received=received)])


def preview(text: str) -> str:
    return text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "..."


def check_arguments(test_fraction: Any, split_seed: Any, label_column: Any) -> None:
    fraction, seed = _SPLIT_BOUNDS["test_fraction"], _SPLIT_BOUNDS["split_seed"]
    try:
        validation.number(test_fraction, "test_fraction", minimum=fraction["minimum"],
                          maximum=fraction["maximum"])
        validation.integer(split_seed, "split_seed", minimum=seed["minimum"],
                           maximum=seed["maximum"])
    except SpecError as error:
        raise InvalidInput(error.message, [spec_detail(error, str(error.field))]) from None
    if label_column is not None and not isinstance(label_column, str):
        raise invalid("label_column", "invalid value", expected="a column name (a string)",
                      received=repr(label_column))


def split(x: np.ndarray, y: np.ndarray, test_fraction: float,
          split_seed: int) -> dict[str, np.ndarray]:
    try:
        split = train_test_split(x, y, test_fraction=test_fraction, seed=split_seed)
    except SpecError as error:
        raise InvalidInput(error.message, [spec_detail(error, "test_fraction")]) from None
    return split._asdict()



def dataset_from(arrays: dict[str, np.ndarray], *, name: str | None, filename: str,
                 class_names: tuple[str, ...] | None = None) -> Dataset:
    """The Dataset of checked arrays (x_train, y_train, x_test, y_test), named `name`, else
    `filename`; its classes are those `class_names` names, else 0 .. the largest label."""
    n_classes = (len(class_names) if class_names is not None
                 else int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1)
    return Dataset(**arrays, n_classes=n_classes, class_names=class_names,
                   name=(name or filename or "upload")[:MAX_NAME_CHARS])
