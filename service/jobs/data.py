"""A job's data: what the spec names (built-in or uploaded), its facts, and its arrays."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from service.datasets.storage import unpack_arrays
from service.engine.datasets import BUILTIN_DATASETS, Dataset, kept_training_rows, load_builtin
from service.engine.errors import SpecError
from service.errors import ErrorDetail, InvalidSpec, spec_detail
from service.store import datasets as dataset_rows

from .specs import DataSpec, UploadedData

DIGITS_IMAGE_SHAPE = [1, 8, 8]
DIGITS_CHANNELS_LAST_SHAPE = [8, 8, 1]
"""The digits images as a channels_last Keras model declares them (H, W, C)."""


@dataclass(frozen=True)
class DataFacts:
    """What validation needs to know about a job's data without loading it."""

    input_shapes: list[list[int]]
    n_train: int
    n_test: int
    n_classes: int
    dataset_id: str | None = None


def facts(session: Session, data: DataSpec, *, owner: str | None) -> DataFacts:
    """The data's shapes and sizes; InvalidSpec when an uploaded dataset is unknown."""
    if isinstance(data, UploadedData):
        record = dataset_rows.get(session, data.dataset_id, owner=owner)
        if record is None:
            raise InvalidSpec("unknown dataset", [ErrorDetail(
                "data.dataset_id", "no dataset with this id", type="not_found",
                received=data.dataset_id)])
        return DataFacts([list(record.input_shape)], record.n_train, record.n_test,
                         record.n_classes, dataset_id=record.id)
    params = builtin_params(data)
    info = BUILTIN_DATASETS[data.dataset]
    n_samples = params.get("n_samples", info["n_samples"])
    n_classes = params.get("n_classes", info["n_classes"])
    if data.dataset == "digits":
        shapes = [info["input_shape"], DIGITS_IMAGE_SHAPE, DIGITS_CHANNELS_LAST_SHAPE]
    elif data.dataset == "blobs":
        shapes = [[params["n_features"]]]
    else:
        shapes = [info["input_shape"]]
    n_test = round(n_samples * data.test_fraction)
    n_train = kept_training_rows(n_samples - n_test, params.get("train_size"))
    return DataFacts(shapes, n_train, n_test, n_classes)


def builtin_params(data: DataSpec) -> dict[str, int | float | None]:
    """The generator parameters of a built-in data spec (everything but name and split)."""
    return data.model_dump(exclude={"dataset", "test_fraction", "split_seed"})


def load(session: Session, data: DataSpec, *, input_shape: list[int], dtype: str) -> Dataset:
    """The arrays to train on, shaped for the model's input."""
    if isinstance(data, UploadedData):
        record = dataset_rows.get(session, data.dataset_id)
        if record is None:
            raise LookupError(f"dataset {data.dataset_id} no longer exists")
        return unpack_arrays(record.data, name=record.name,
                             n_classes=record.n_classes).to_dtype(dtype)
    channels_last = list(input_shape) == DIGITS_CHANNELS_LAST_SHAPE
    try:
        dataset = load_builtin(data.dataset, test_fraction=data.test_fraction,
                               split_seed=data.split_seed,
                               flat=list(input_shape) not in (DIGITS_IMAGE_SHAPE,
                                                              DIGITS_CHANNELS_LAST_SHAPE),
                               dtype=dtype, **builtin_params(data))
    except SpecError as error:
        raise InvalidSpec(error.message, [spec_detail(error, f"data.{error.field}")]) from None
    if not channels_last:
        return dataset
    return dataclasses.replace(
        dataset, x_train=np.ascontiguousarray(dataset.x_train.transpose(0, 2, 3, 1)),
        x_test=np.ascontiguousarray(dataset.x_test.transpose(0, 2, 3, 1)))

