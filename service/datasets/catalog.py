"""An owner's datasets: accept an upload, list, read and delete them; the built-in datasets.

Functions take the caller's session and never commit: the route decides the transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from service.config import Settings
from service.engine.datasets import BUILTIN_DATASETS, SPLIT_PARAMETERS
from service.errors import Conflict, NotFound
from service.store import datasets as dataset_rows
from service.store.models import DatasetRecord

from .images import ImageOptions
from .rules import MAX_NAME_CHARS, UploadLimits
from .storage import pack_arrays
from .uploads import ParsedUpload, parse_upload


@dataclass(frozen=True)
class UploadForm:
    """What a client sent to upload a dataset: the file's name and bytes, and the form fields."""

    filename: str
    data: bytes
    name: str | None = None
    label_column: str | None = None
    test_fraction: float = 0.25
    split_seed: int = 0
    color_mode: str | None = None
    image_height: int | None = None
    image_width: int | None = None
    sha256: str = field(init=False)
    """The file's SHA-256, hex."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())

    def fingerprint(self) -> bytes:
        """What makes two uploads the same request (for Idempotency-Key): the file's content
        and every form field."""
        return self.sha256.encode() + repr((self.filename, self.name, self.label_column,
                                            self.test_fraction, self.split_seed,
                                            self.color_mode, self.image_height,
                                            self.image_width)).encode()

    def image_options(self) -> ImageOptions | None:
        """The image decoding options the form gives, None when it gives none."""
        if self.color_mode is None and self.image_height is None and self.image_width is None:
            return None
        return ImageOptions.from_form(self.color_mode, self.image_height, self.image_width)


@dataclass(frozen=True)
class PreparedUpload:
    """An upload parsed, checked and packed in the storage format: ready for a row."""

    form: UploadForm
    parsed: ParsedUpload
    stored: bytes
    """The .npz the datasets table holds (service.datasets.storage)."""


@dataclass(frozen=True)
class DatasetPage:
    """Up to `limit` datasets newest first, and whether more follow the last of them."""

    records: list[DatasetRecord]
    has_more: bool


def prepare(form: UploadForm, settings: Settings) -> PreparedUpload:
    """Parse and check the upload within the server's limits (InvalidInput, 422, names the
    problem) and pack it for storage. Needs no database: run it before a write session opens,
    since on SQLite that session holds the write lock until it commits."""
    limits = UploadLimits(max_rows=settings.max_dataset_rows,
                          max_features=settings.max_dataset_features,
                          max_image_files=settings.max_image_files,
                          max_image_archive_bytes=settings.max_image_archive_bytes,
                          max_image_pixels=settings.max_image_pixels,
                          max_image_decoded_bytes=settings.max_image_decoded_bytes)
    parsed = parse_upload(form.filename, form.data, label_column=form.label_column,
                          test_fraction=form.test_fraction, split_seed=form.split_seed,
                          name=form.name, image_options=form.image_options(), limits=limits)
    return PreparedUpload(form=form, parsed=parsed, stored=pack_arrays(parsed.dataset))


def add(session: Session, owner: str, upload: PreparedUpload) -> DatasetRecord:
    """A new dataset row of `owner` for the prepared upload (the caller commits)."""
    dataset = upload.parsed.dataset
    return dataset_rows.add(
        session, dataset_id=uuid.uuid4().hex, owner=owner,
        name=upload.form.name or upload.form.filename[:MAX_NAME_CHARS],
        source_format=upload.parsed.source_format, n_train=len(dataset.x_train),
        n_test=len(dataset.x_test), input_shape=list(dataset.input_shape),
        n_classes=dataset.n_classes,
        class_names=None if dataset.class_names is None else list(dataset.class_names),
        sha256=upload.form.sha256, data=upload.stored)


def get_owned(session: Session, dataset_id: str, owner: str) -> DatasetRecord:
    """The owner's dataset without its arrays, or NotFound (also when it is someone else's)."""
    record = dataset_rows.get(session, dataset_id, owner=owner, with_data=False)
    if record is None:
        raise NotFound(f"no dataset with id {dataset_id!r}")
    return record


def page(session: Session, *, owner: str, before: tuple[dt.datetime, str] | None,
         limit: int) -> DatasetPage:
    """The owner's datasets newest first, after the (created_at, id) `before` if given."""
    records = dataset_rows.page(session, owner=owner, before=before, limit=limit + 1)
    return DatasetPage(records=records[:limit], has_more=len(records) > limit)


def delete(session: Session, dataset_id: str, owner: str) -> None:
    """Delete the owner's dataset: NotFound when it is not theirs, Conflict while a queued or
    running job trains on it (the caller commits)."""
    get_owned(session, dataset_id, owner)
    if dataset_rows.in_use(session, dataset_id):
        raise Conflict(f"dataset {dataset_id} is used by a queued or running job")
    dataset_rows.delete(session, dataset_id)


def builtin() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the datasets a job can name in data.dataset with their parameters, the parameters of
    the train/test split every one of them takes)."""
    return list(BUILTIN_DATASETS.values()), SPLIT_PARAMETERS
