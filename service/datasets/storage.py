"""The storage format of a dataset: one compressed .npz of its four arrays, as the datasets
table holds it.

    x_train (N_train, *input_shape) float32, y_train (N_train,) int64,
    x_test (N_test, *input_shape) float32, y_test (N_test,) int64
"""

from __future__ import annotations

import io

import numpy as np

from service.engine.datasets import Dataset
from service.engine.npz import load_npz

ARRAY_NAMES = ("x_train", "y_train", "x_test", "y_test")


def pack_arrays(dataset: Dataset) -> bytes:
    """A dataset as the .npz the datasets table stores."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{name: getattr(dataset, name) for name in ARRAY_NAMES})
    return buffer.getvalue()


def unpack_arrays(data: bytes, *, name: str, n_classes: int,
                  class_names: tuple[str, ...] | None = None) -> Dataset:
    """The Dataset stored by pack_arrays (written by dropnet itself, loaded without pickle);
    the class names live in the dataset's row, beside the arrays."""
    archive = load_npz(data)
    arrays = {key: archive[key] for key in ARRAY_NAMES}
    return Dataset(**arrays, n_classes=n_classes, name=name, class_names=class_names)
