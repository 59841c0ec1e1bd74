"""Uploaded dataset rows. Functions take the caller's session and never commit."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, exists, or_, select
from sqlalchemy import delete as sql_delete
from sqlalchemy.orm import Session, defer

from .jobs import ACTIVE
from .models import DatasetRecord, Job


def add(session: Session, *, dataset_id: str, owner: str, name: str, source_format: str,
        n_train: int, n_test: int, input_shape: list[int], n_classes: int,
        sha256: str, data: bytes, class_names: list[str] | None = None) -> DatasetRecord:
    """A new dataset row holding `data` (the stored .npz), flushed so that it has its
    created_at. `class_names`: each class's name by index, when the upload names them."""
    record = DatasetRecord(id=dataset_id, owner=owner, name=name, source_format=source_format,
                           n_train=n_train, n_test=n_test, input_shape=input_shape,
                           n_classes=n_classes, class_names=class_names, size_bytes=len(data),
                           sha256=sha256, data=data)
    session.add(record)
    session.flush()
    return record


def get(session: Session, dataset_id: str, *, owner: str | None = None,
        with_data: bool = True) -> DatasetRecord | None:
    """The dataset, or None when missing or (with `owner`) someone else's."""
    options = [] if with_data else [defer(DatasetRecord.data)]
    record = session.get(DatasetRecord, dataset_id, options=options)
    if record is None or (owner is not None and record.owner != owner):
        return None
    return record


def page(session: Session, *, owner: str | None, before: tuple[dt.datetime, str] | None,
         limit: int) -> list[DatasetRecord]:
    """Datasets newest first, without their arrays."""
    query = select(DatasetRecord).options(defer(DatasetRecord.data))
    if owner is not None:
        query = query.where(DatasetRecord.owner == owner)
    if before is not None:
        created_at, dataset_id = before
        query = query.where(or_(DatasetRecord.created_at < created_at,
                                and_(DatasetRecord.created_at == created_at,
                                     DatasetRecord.id < dataset_id)))
    query = query.order_by(DatasetRecord.created_at.desc(), DatasetRecord.id.desc()).limit(limit)
    return list(session.scalars(query))


def in_use(session: Session, dataset_id: str) -> bool:
    """Whether a queued or running job trains on the dataset."""
    return bool(session.scalar(select(exists().where(Job.dataset_id == dataset_id,
                                                      Job.status.in_(ACTIVE)))))


def delete(session: Session, dataset_id: str) -> None:
    """Remove the dataset; jobs that trained on it keep their rows (their dataset_id is
    cleared by the foreign key)."""
    session.execute(sql_delete(DatasetRecord).where(DatasetRecord.id == dataset_id))
