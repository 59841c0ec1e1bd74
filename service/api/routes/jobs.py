"""/v1/jobs: submit, list, read, cancel, delete, attempts, webhook deliveries, model
download."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse

from service import idempotency
from service.errors import Conflict
from service.idempotency import StoredResponse
from service.interop import onnx as onnx_export
from service.jobs import lifecycle, submission
from service.jobs.specs import JobSpec
from service.store import artifacts
from service.store import jobs as job_rows
from service.store.models import Job
from service.webhooks import deliveries as webhook_deliveries

from .. import cursors
from ..deps import Owner, ReadSession, SettingsDep, StateDep, WriteSession
from ..errors import SpecBodyRoute
from ..replay import replayed
from ..schemas.deliveries import DeliveriesPublic, DeliveryPublic
from ..schemas.errors import responses
from ..schemas.jobs import AttemptPublic, AttemptsPublic, JobPublic, JobsPublic, JobStatus

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], route_class=SpecBodyRoute)

ENDPOINT_SUBMIT = "POST /v1/jobs"


@router.post("", status_code=201, response_model=JobPublic,
             responses=responses(401, 409, 413, 422, 429))
def submit_job(spec: JobSpec, owner: Owner, state: StateDep,
               idempotency_key: Annotated[str | None, Header()] = None) -> JSONResponse:
    """Queue a training job. The whole spec is checked first: 422 names each bad field."""
    request = idempotency.keyed(owner, ENDPOINT_SUBMIT, idempotency_key,
                                lambda: spec.model_dump(mode="json", by_alias=True))
    # The session is opened here rather than by a dependency: a generator dependency costs two
    # more trips through the thread pool, and this is the busiest write path.
    with state.db.write_session() as session:
        outcome = idempotency.create_once(
            session, request,
            lambda: submission.submit(session, spec, owner=owner, settings=state.settings),
            _created)
    if isinstance(outcome, StoredResponse):
        return replayed(outcome)
    state.executor.notify(outcome.id)
    # Serialised after the commit: on SQLite the write lock is released at the commit.
    created = _created(outcome)
    return JSONResponse(created.body, status_code=201, headers=created.headers)


def _created(job: Job) -> StoredResponse:
    return StoredResponse(201, JobPublic.from_row(job).model_dump(mode="json"),
                          f"/v1/jobs/{job.id}")


@router.get("", response_model=JobsPublic, responses=responses(401, 422))
def list_jobs(session: ReadSession, owner: Owner, settings: SettingsDep,
              status: JobStatus | None = None,
              sweep_id: Annotated[str | None, Query(max_length=64)] = None,
              limit: Annotated[int, Query(ge=1)] = 50,
              cursor: str | None = None) -> JobsPublic:
    """Jobs newest first (with `sweep_id`, that sweep's runs); pass `next_cursor` back as
    `cursor` for the next page."""
    limit = min(limit, settings.page_limit_max)
    rows = job_rows.page(session, owner=owner, status=status, sweep_id=sweep_id,
                         before=cursors.decode_row(cursor), limit=limit + 1)
    next_cursor = (cursors.encode_row(rows[limit - 1].created_at, rows[limit - 1].id)
                   if len(rows) > limit else None)
    return JobsPublic(data=[JobPublic.from_row(job) for job in rows[:limit]],
                      next_cursor=next_cursor)


@router.get("/{job_id}", response_model=JobPublic, responses=responses(401, 404))
def get_job(job_id: str, session: ReadSession, owner: Owner) -> JobPublic:
    return JobPublic.from_row(lifecycle.get_owned(session, job_id, owner))


@router.post("/{job_id}/cancel", status_code=202, response_model=JobPublic,
             responses=responses(401, 404, 409))
def cancel_job(job_id: str, session: WriteSession, owner: Owner) -> JobPublic:
    """Queued jobs end cancelled at once; running ones stop at their next heartbeat."""
    job = lifecycle.get_owned(session, job_id, owner)
    lifecycle.cancel(session, job)
    session.commit()
    return JobPublic.from_row(job)


@router.delete("/{job_id}", status_code=204, response_class=Response,
               responses=responses(401, 404, 409))
def delete_job(job_id: str, session: WriteSession, owner: Owner, state: StateDep) -> Response:
    """Delete a finished job with its metrics and model."""
    job = lifecycle.get_owned(session, job_id, owner)
    lifecycle.delete(session, job)
    session.commit()
    state.models.discard(job_id)
    return Response(status_code=204)


@router.get("/{job_id}/attempts", response_model=AttemptsPublic, responses=responses(401, 404))
def list_attempts(job_id: str, session: ReadSession, owner: Owner) -> AttemptsPublic:
    """Every claim of the job: which worker ran it, when, and how it ended."""
    lifecycle.get_owned(session, job_id, owner)
    return AttemptsPublic(data=[AttemptPublic.from_row(a)
                                for a in job_rows.attempts(session, job_id)])


@router.get("/{job_id}/deliveries", response_model=DeliveriesPublic,
            responses=responses(401, 404))
def list_deliveries(job_id: str, session: ReadSession, owner: Owner) -> DeliveriesPublic:
    """The job's webhook deliveries: each attempt's answer code or error, the next retry."""
    job = lifecycle.get_owned(session, job_id, owner)
    return DeliveriesPublic(data=[DeliveryPublic.from_row(delivery, attempts) for
                                  delivery, attempts in webhook_deliveries.of_job(session, job)])


@router.get("/{job_id}/model", response_class=Response, responses={
    200: {"content": {"application/octet-stream": {}, onnx_export.MEDIA_TYPE: {}},
          "description": "format=npz (default): the model .npz, weights and architecture "
                         "JSON; format=onnx: an ONNX model (opset 17, input \"input\" with a "
                         "dynamic batch axis, output \"probabilities\")"},
    **responses(401, 404, 409, 422, 501)})
def download_model(job_id: str, session: ReadSession, owner: Owner,
                   format: Literal["npz", "onnx"] = "npz") -> Response:
    job = lifecycle.get_owned(session, job_id, owner)
    model = artifacts.get_model(session, job_id)
    if model is None:
        raise Conflict(f"job {job_id} is {job.status} and has no trained model")
    if format == "onnx":
        return Response(onnx_export.export_model_file(model.data),
                        media_type=onnx_export.MEDIA_TYPE,
                        headers={"Content-Disposition": f'attachment; filename="{job_id}.onnx"'})
    return Response(model.data, media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{job_id}.npz"'})
