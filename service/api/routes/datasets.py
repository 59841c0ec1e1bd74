"""/v1/datasets: upload, list, read, delete; the built-in datasets."""

from __future__ import annotations

import hashlib
import unicodedata
import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Query, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import AfterValidator
from sqlalchemy import delete as sql_delete

from service import idempotency
from service.datasets.uploads import UploadLimits, parse_upload
from service.engine.datasets import BUILTIN_DATASETS, SPLIT_PARAMETERS
from service.errors import Conflict, NotFound
from service.jobs.data import pack_arrays
from service.jobs.specs import printable
from service.store import datasets as dataset_rows
from service.store.models import DatasetRecord

from .. import cursors
from ..deps import AppState, Owner, ReadSession, SettingsDep, StateDep, WriteSession
from ..replay import replayed
from ..schemas.datasets import BuiltinDatasetsPublic, DatasetPublic, DatasetsPublic
from ..schemas.errors import responses

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

ENDPOINT_UPLOAD = "POST /v1/datasets"


@router.post("", status_code=201, response_model=DatasetPublic,
             responses=responses(401, 413, 422))
async def upload_dataset(
    state: StateDep, owner: Owner,
    file: Annotated[UploadFile, File(description="an .npz with x_train, y_train, x_test, "
                                                 "y_test, or a CSV with a header row")],
    name: Annotated[str | None, Form(min_length=1, max_length=200),
                    AfterValidator(printable)] = None,
    label_column: Annotated[str | None, Form(min_length=1, max_length=200),
                            AfterValidator(printable)] = None,
    test_fraction: Annotated[float, Form(ge=0.01, le=0.99)] = 0.25,
    split_seed: Annotated[int, Form(ge=0, le=2**31 - 1)] = 0,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Upload a dataset: 201 with its id, shapes and class count; 422 names any problem."""
    data = await file.read()
    filename = _plain(file.filename or "") or "upload"
    key = None if idempotency_key is None else idempotency.check_key(idempotency_key)
    digest = idempotency.request_hash(
        hashlib.sha256(data).hexdigest().encode()
        + repr((filename, name, label_column, test_fraction, split_seed)).encode())
    return await run_in_threadpool(
        _store_upload, state, owner, data, filename, name, label_column, test_fraction,
        split_seed, key, digest)


def _plain(filename: str) -> str:
    """The client's file name without control characters or lone surrogates (it names the
    dataset when no name is given)."""
    return "".join(char for char in filename
                   if unicodedata.category(char) not in ("Cc", "Cs"))[:200]


def _store_upload(state: AppState, owner: str, data: bytes, filename: str, name: str | None,
                  label_column: str | None, test_fraction: float, split_seed: int,
                  key: str | None, digest: str) -> JSONResponse:
    settings = state.settings
    limits = UploadLimits(max_rows=settings.max_dataset_rows,
                          max_features=settings.max_dataset_features)
    parsed = parse_upload(filename, data, label_column=label_column,
                          test_fraction=test_fraction, split_seed=split_seed, name=name,
                          limits=limits)
    dataset = parsed.dataset
    stored_bytes = pack_arrays(dataset)
    with state.db.write_session() as session:
        if key is not None:
            stored = idempotency.lookup(session, owner=owner, endpoint=ENDPOINT_UPLOAD, key=key,
                                        digest=digest)
            if stored is not None:
                return replayed(stored)
        record = DatasetRecord(
            id=uuid.uuid4().hex, owner=owner, name=name or filename[:200],
            source_format=parsed.source_format, n_train=len(dataset.x_train),
            n_test=len(dataset.x_test), input_shape=list(dataset.input_shape),
            n_classes=dataset.n_classes, size_bytes=len(stored_bytes),
            sha256=hashlib.sha256(data).hexdigest(), data=stored_bytes)
        session.add(record)
        session.flush()
        body = DatasetPublic.from_row(record).model_dump(mode="json")
        location = f"/v1/datasets/{record.id}"
        if key is not None:
            stored = idempotency.remember_or_replay(
                session, owner=owner, endpoint=ENDPOINT_UPLOAD, key=key, digest=digest,
                response=idempotency.StoredResponse(201, body, location))
            if stored is not None:  # a concurrent identical request won the race
                return replayed(stored)
        session.commit()
    return JSONResponse(body, status_code=201, headers={"Location": location})


@router.get("", response_model=DatasetsPublic, responses=responses(401, 422))
def list_datasets(session: ReadSession, owner: Owner, settings: SettingsDep,
                  limit: Annotated[int, Query(ge=1)] = 50,
                  cursor: str | None = None) -> DatasetsPublic:
    limit = min(limit, settings.page_limit_max)
    rows = dataset_rows.page(session, owner=owner, before=cursors.decode_row(cursor),
                             limit=limit + 1)
    next_cursor = (cursors.encode_row(rows[limit - 1].created_at, rows[limit - 1].id)
                   if len(rows) > limit else None)
    return DatasetsPublic(data=[DatasetPublic.from_row(r) for r in rows[:limit]],
                          next_cursor=next_cursor)


@router.get("/builtin", response_model=BuiltinDatasetsPublic)
def builtin_datasets() -> BuiltinDatasetsPublic:
    """The datasets a job can name in data.dataset, with their parameters."""
    return BuiltinDatasetsPublic(data=list(BUILTIN_DATASETS.values()),
                                 split_parameters=SPLIT_PARAMETERS)


@router.get("/{dataset_id}", response_model=DatasetPublic, responses=responses(401, 404))
def get_dataset(dataset_id: str, session: ReadSession, owner: Owner) -> DatasetPublic:
    record = dataset_rows.get(session, dataset_id, owner=owner, with_data=False)
    if record is None:
        raise NotFound(f"no dataset with id {dataset_id!r}")
    return DatasetPublic.from_row(record)


@router.delete("/{dataset_id}", status_code=204, response_class=Response,
               responses=responses(401, 404, 409))
def delete_dataset(dataset_id: str, session: WriteSession, owner: Owner) -> Response:
    """Delete a dataset; 409 while a queued or running job uses it."""
    record = dataset_rows.get(session, dataset_id, owner=owner, with_data=False)
    if record is None:
        raise NotFound(f"no dataset with id {dataset_id!r}")
    if dataset_rows.in_use(session, dataset_id):
        raise Conflict(f"dataset {dataset_id} is used by a queued or running job")
    session.execute(sql_delete(DatasetRecord).where(DatasetRecord.id == dataset_id))
    session.commit()
    return Response(status_code=204)
