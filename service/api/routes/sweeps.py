"""/v1/sweeps: create, list, read (runs, best run, summary), cancel, delete, runs.csv, webhook
deliveries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse

from service import idempotency
from service.idempotency import StoredResponse
from service.store import sweeps as sweep_rows
from service.store.models import Job, Sweep
from service.store.statuses import sweep_status
from service.sweeps import service as sweeps
from service.sweeps.specs import SweepCreate
from service.webhooks import deliveries as webhook_deliveries

from .. import cursors
from ..deps import Owner, ReadSession, SettingsDep, StateDep, WriteSession
from ..replay import replayed
from ..schemas.deliveries import DeliveriesPublic, DeliveryPublic
from ..schemas.errors import responses
from ..schemas.sweeps import SweepPublic, SweepsPublic

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"])

ENDPOINT_CREATE = "POST /v1/sweeps"


@router.post("", status_code=201, response_model=SweepPublic,
             responses=responses(401, 409, 413, 422, 429))
def create_sweep(body: SweepCreate, owner: Owner, state: StateDep,
                 idempotency_key: Annotated[str | None, Header()] = None) -> JSONResponse:
    """Queue every run of a sweep. Each generated job spec is checked first: 422 names the
    parameter path, the value and the job-spec field that refused it."""
    request = idempotency.keyed(owner, ENDPOINT_CREATE, idempotency_key,
                                lambda: body.model_dump(mode="json", by_alias=True))
    with state.db.write_session() as session:
        outcome = idempotency.create_once(
            session, request,
            lambda: sweeps.create(session, body, owner=owner, settings=state.settings),
            _created)
    if isinstance(outcome, StoredResponse):
        return replayed(outcome)
    for job in outcome[1]:
        state.executor.notify(job.id)
    # Serialised after the commit: on SQLite the write lock is released at the commit.
    created = _created(outcome)
    return JSONResponse(created.body, status_code=201, headers=created.headers)


def _created(created: tuple[Sweep, list[Job]]) -> StoredResponse:
    sweep, jobs = created
    counts = {"queued": len(jobs)}
    return StoredResponse(201, SweepPublic.from_row(sweep, "queued", counts)
                          .model_dump(mode="json"), f"/v1/sweeps/{sweep.id}")


@router.get("", response_model=SweepsPublic, responses=responses(401, 422))
def list_sweeps(session: ReadSession, owner: Owner, settings: SettingsDep,
                limit: Annotated[int, Query(ge=1)] = 50,
                cursor: str | None = None) -> SweepsPublic:
    """Sweeps newest first with their run counts; pass `next_cursor` back as `cursor`."""
    limit = min(limit, settings.page_limit_max)
    rows = sweep_rows.page(session, owner=owner, before=cursors.decode_row(cursor),
                           limit=limit + 1)
    next_cursor = (cursors.encode_row(rows[limit - 1].created_at, rows[limit - 1].id)
                   if len(rows) > limit else None)
    counts = sweep_rows.status_counts(session, [sweep.id for sweep in rows[:limit]])
    return SweepsPublic(data=[SweepPublic.from_row(sweep, sweep_status(counts[sweep.id]),
                                                   counts[sweep.id]) for sweep in rows[:limit]],
                        next_cursor=next_cursor)


@router.get("/{sweep_id}", response_model=SweepPublic, responses=responses(401, 404))
def get_sweep(sweep_id: str, session: ReadSession, owner: Owner) -> SweepPublic:
    """The sweep with each run's final metrics and gaps, the best run by the objective and
    the summary per swept parameter value."""
    sweep = sweeps.get_owned(session, sweep_id, owner)
    return _detailed(session, sweep)


def _detailed(session: ReadSession, sweep: Sweep) -> SweepPublic:
    counts = sweep_rows.status_counts(session, [sweep.id])[sweep.id]
    return SweepPublic.from_row(sweep, sweep_status(counts), counts,
                                sweep_rows.run_results(session, sweep))


@router.post("/{sweep_id}/cancel", status_code=202, response_model=SweepPublic,
             responses=responses(401, 404, 409))
def cancel_sweep(sweep_id: str, session: WriteSession, owner: Owner) -> SweepPublic:
    """Queued runs end cancelled at once; running ones stop at their next heartbeat."""
    sweep = sweeps.get_owned(session, sweep_id, owner)
    sweeps.cancel(session, sweep)
    session.commit()
    return _detailed(session, sweep)


@router.delete("/{sweep_id}", status_code=204, response_class=Response,
               responses=responses(401, 404, 409))
def delete_sweep(sweep_id: str, session: WriteSession, owner: Owner,
                 state: StateDep) -> Response:
    """Delete a finished sweep with its runs, their metrics and models."""
    sweep = sweeps.get_owned(session, sweep_id, owner)
    deleted = sweeps.delete(session, sweep)
    session.commit()
    for job_id in deleted:
        state.models.discard(job_id)
    return Response(status_code=204)


@router.get("/{sweep_id}/runs.csv", response_class=Response, responses={
    200: {"content": {"text/csv": {}}, "description": "one row per run"},
    **responses(401, 404)})
def runs_csv(sweep_id: str, session: ReadSession, owner: Owner) -> Response:
    """One row per run: its parameters and final metrics (for pandas.read_csv)."""
    sweep = sweeps.get_owned(session, sweep_id, owner)
    return Response(sweeps.runs_csv(sweep, sweep_rows.run_results(session, sweep)),
                    media_type="text/csv")


@router.get("/{sweep_id}/deliveries", response_model=DeliveriesPublic,
            responses=responses(401, 404))
def list_deliveries(sweep_id: str, session: ReadSession, owner: Owner) -> DeliveriesPublic:
    """The sweep's own webhook delivery (sent when its last run ends; its runs' deliveries
    are under /v1/jobs/{id}/deliveries): each attempt's answer code or error, the next retry."""
    sweep = sweeps.get_owned(session, sweep_id, owner)
    return DeliveriesPublic(data=[DeliveryPublic.from_row(delivery, attempts) for delivery,
                                  attempts in webhook_deliveries.of_sweep(session, sweep)])
