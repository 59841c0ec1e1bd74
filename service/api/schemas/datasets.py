"""Dataset resources."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from service.store.models import DatasetRecord


class DatasetPublic(BaseModel):
    id: str
    name: str
    format: Literal["npz", "csv", "images"]
    n_train: int
    n_test: int
    input_shape: list[int]
    n_classes: int
    class_names: list[str] | None = Field(
        None, description="each class's name by index (image folders: the sorted class "
                          "folder names)")
    size_bytes: int
    sha256: str
    created_at: dt.datetime

    @classmethod
    def from_row(cls, record: DatasetRecord) -> DatasetPublic:
        return cls(id=record.id, name=record.name,
                   format=record.source_format,  # type: ignore[arg-type]
                   n_train=record.n_train, n_test=record.n_test,
                   input_shape=list(record.input_shape), n_classes=record.n_classes,
                   class_names=record.class_names,
                   size_bytes=record.size_bytes, sha256=record.sha256,
                   created_at=record.created_at)


class DatasetsPublic(BaseModel):
    data: list[DatasetPublic]
    next_cursor: str | None


class BuiltinDatasetsPublic(BaseModel):
    data: list[dict[str, Any]]
    split_parameters: list[dict[str, Any]]
