"""/v1/datasets: upload, list, read, delete; the built-in datasets."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Header, Query, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import AfterValidator

from service import idempotency
from service.datasets import catalog
from service.idempotency import IdempotentRequest, StoredResponse
from service.jobs.specs import printable
from service.store.models import DatasetRecord

from .. import cursors
from ..deps import AppState, Owner, ReadSession, SettingsDep, StateDep, WriteSession
from ..replay import replayed
from ..schemas.datasets import BuiltinDatasetsPublic, DatasetPublic, DatasetsPublic
from ..schemas.errors import responses

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

ENDPOINT_UPLOAD = "POST /v1/datasets"
MAX_IMAGE_SIDE = 65_535
"""Largest target height or width (the pixel limit, DROPNET_MAX_IMAGE_PIXELS, binds first)."""


@router.post("", status_code=201, response_model=DatasetPublic,
             responses=responses(401, 413, 422))
async def upload_dataset(
    state: StateDep, owner: Owner,
    file: Annotated[UploadFile, File(description="an .npz with x_train, y_train, x_test, "
                                                 "y_test, a CSV with a header row, or a zip of "
                                                 "image folders (train/<class>/<image>.png, "
                                                 "optionally test/<class>/...)")],
    name: Annotated[str | None, Form(min_length=1, max_length=200),
                    AfterValidator(printable)] = None,
    label_column: Annotated[str | None, Form(min_length=1, max_length=200),
                            AfterValidator(printable)] = None,
    test_fraction: Annotated[float, Form(ge=0.01, le=0.99)] = 0.25,
    split_seed: Annotated[int, Form(ge=0, le=2**31 - 1)] = 0,
    color_mode: Annotated[Literal["grayscale", "rgb"] | None, Form(
        description="image folders: decode as 1 channel (grayscale) or 3 (rgb, the default)")
    ] = None,
    image_height: Annotated[int | None, Form(ge=1, le=MAX_IMAGE_SIDE, description=(
        "image folders: resize every image to this height (with image_width); default: "
        "keep the images' one size"))] = None,
    image_width: Annotated[int | None, Form(ge=1, le=MAX_IMAGE_SIDE, description=(
        "image folders: resize every image to this width (with image_height)"))] = None,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Upload a dataset: 201 with its id, shapes and class count; 422 names any problem."""
    form = catalog.UploadForm(filename=_plain(file.filename or "") or "upload",
                              data=await file.read(), name=name, label_column=label_column,
                              test_fraction=test_fraction, split_seed=split_seed,
                              color_mode=color_mode, image_height=image_height,
                              image_width=image_width)
    request = idempotency.keyed(owner, ENDPOINT_UPLOAD, idempotency_key, form.fingerprint)
    return await run_in_threadpool(_store_upload, state, owner, form, request)


def _plain(filename: str) -> str:
    """The client's file name without control characters or lone surrogates (it names the
    dataset when no name is given)."""
    return "".join(char for char in filename
                   if unicodedata.category(char) not in ("Cc", "Cs"))[:200]


def _store_upload(state: AppState, owner: str, form: catalog.UploadForm,
                  request: IdempotentRequest | None) -> JSONResponse:
    upload = catalog.prepare(form, state.settings)
    with state.db.write_session() as session:
        outcome = idempotency.create_once(session, request,
                                          lambda: catalog.add(session, owner, upload), _created)
    if isinstance(outcome, StoredResponse):
        return replayed(outcome)
    created = _created(outcome)
    return JSONResponse(created.body, status_code=201, headers=created.headers)


def _created(record: DatasetRecord) -> StoredResponse:
    return StoredResponse(201, DatasetPublic.from_row(record).model_dump(mode="json"),
                          f"/v1/datasets/{record.id}")


@router.get("", response_model=DatasetsPublic, responses=responses(401, 422))
def list_datasets(session: ReadSession, owner: Owner, settings: SettingsDep,
                  limit: Annotated[int, Query(ge=1)] = 50,
                  cursor: str | None = None) -> DatasetsPublic:
    page = catalog.page(session, owner=owner, before=cursors.decode_row(cursor),
                        limit=min(limit, settings.page_limit_max))
    last = page.records[-1] if page.has_more else None
    return DatasetsPublic(data=[DatasetPublic.from_row(r) for r in page.records],
                          next_cursor=None if last is None
                          else cursors.encode_row(last.created_at, last.id))


@router.get("/builtin", response_model=BuiltinDatasetsPublic)
def builtin_datasets() -> BuiltinDatasetsPublic:
    """The datasets a job can name in data.dataset, with their parameters."""
    datasets, split_parameters = catalog.builtin()
    return BuiltinDatasetsPublic(data=datasets, split_parameters=split_parameters)


@router.get("/{dataset_id}", response_model=DatasetPublic, responses=responses(401, 404))
def get_dataset(dataset_id: str, session: ReadSession, owner: Owner) -> DatasetPublic:
    return DatasetPublic.from_row(catalog.get_owned(session, dataset_id, owner))


@router.delete("/{dataset_id}", status_code=204, response_class=Response,
               responses=responses(401, 404, 409))
def delete_dataset(dataset_id: str, session: WriteSession, owner: Owner) -> Response:
    """Delete a dataset; 409 while a queued or running job uses it."""
    catalog.delete(session, dataset_id, owner)
    session.commit()
    return Response(status_code=204)
