"""/v1/jobs/{id}/events and /v1/sweeps/{id}/events: Server-Sent Events (sse-starlette)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from service.events import streams
from service.events.cursors import HEADER
from service.events.streams import Since, Stream

from ..deps import Owner, StateDep
from ..schemas.errors import responses

router = APIRouter(tags=["events"])

STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}},
          "description": "the event stream (docs/events.md: event types and ids)"},
    204: {"description": f"the {HEADER} was the stream's `end` event: nothing follows"},
    **responses(401, 404, 422, 503)}

LastEventId = Annotated[str | None, Header(alias=HEADER)]


@router.get("/v1/jobs/{job_id}/events", response_class=EventSourceResponse,
            responses=STREAM_RESPONSES)
async def job_events(job_id: str, owner: Owner, state: StateDep,
                     last_event_id: LastEventId = None, since: Since | None = None) -> Response:
    """The job's `status`, `progress`, `metrics` and `end` events as they happen. Without
    `Last-Event-ID`, from the job's first event (`since=now`: from now)."""
    stream = await streams.open_job_stream(state.events, job_id, owner=owner,
                                           last_event_id=last_event_id, since=since)
    return _response(stream, state.settings.events_keepalive_seconds)


@router.get("/v1/sweeps/{sweep_id}/events", response_class=EventSourceResponse,
            responses=STREAM_RESPONSES)
async def sweep_events(sweep_id: str, owner: Owner, state: StateDep,
                       last_event_id: LastEventId = None,
                       since: Since | None = None) -> Response:
    """A `run` event for each status change of the sweep's runs (with its final metrics once
    it ends), then `end` when every run has ended."""
    stream = await streams.open_sweep_stream(state.events, sweep_id, owner=owner,
                                             last_event_id=last_event_id, since=since)
    return _response(stream, state.settings.events_keepalive_seconds)


def _response(stream: Stream, keepalive_seconds: float) -> Response:
    if stream.events is None:
        return Response(status_code=204)
    return EventSourceResponse(stream.events, ping=keepalive_seconds,
                               ping_message_factory=_keepalive)


def _keepalive() -> ServerSentEvent:
    return ServerSentEvent(comment="keep-alive")
