"""Typed live events of `GET /v1/jobs/{id}/events` and `GET /v1/sweeps/{id}/events`.

Each event is a pydantic model with `type` (the SSE event name) and `id` (the SSE id, sent
back as `Last-Event-ID` to resume after it); the fields are the event's JSON data.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, TypeAdapter, ValidationError

from .errors import DropnetError
from .models import JobStatus, Resource
from .sse import ServerSentEvent


class Event(Resource):
    id: str | None = None


class StatusEvent(Event):
    """The job changed state."""

    type: Literal["status"]
    status: JobStatus
    attempts: int
    error: str | None


class ProgressEvent(Event):
    """Training progress (at most 2 per second)."""

    type: Literal["progress"]
    iteration: int
    total: int
    iterations_per_second: float | None
    eta_seconds: float | None


class KeyedPoint(Resource):
    key: str
    step: int
    value: float
    timestamp: float


class MetricsEvent(Event):
    """The metric points written since the previous metrics event, every key, each once."""

    type: Literal["metrics"]
    points: list[KeyedPoint]

    def latest(self) -> dict[str, float]:
        """Each key's value at its highest step in this event."""
        best: dict[str, KeyedPoint] = {}
        for point in self.points:
            if point.key not in best or point.step >= best[point.key].step:
                best[point.key] = point
        return {key: point.value for key, point in best.items()}


class EndEvent(Event):
    """The job ended (the server closes the stream after it)."""

    type: Literal["end"]
    status: JobStatus
    attempts: int
    error: str | None
    metrics: dict[str, float]


class RunEvent(Event):
    """A run of a sweep changed state; `final` holds its final losses and accuracies once
    it has them."""

    type: Literal["run"]
    job_id: str
    status: str
    parameters: dict[str, Any]
    final: dict[str, float | None] | None


class SweepEndEvent(Event):
    """The sweep ended: its status and the count of runs per status."""

    type: Literal["end"]
    status: str
    counts: dict[str, int]


JobEvent = Annotated[StatusEvent | ProgressEvent | MetricsEvent | EndEvent,
                     Field(discriminator="type")]
SweepEvent = Annotated[RunEvent | SweepEndEvent, Field(discriminator="type")]
JOB_EVENTS: TypeAdapter[JobEvent] = TypeAdapter(JobEvent)
SWEEP_EVENTS: TypeAdapter[SweepEvent] = TypeAdapter(SweepEvent)
JOB_EVENT_TYPES = frozenset({"status", "progress", "metrics", "end"})
SWEEP_EVENT_TYPES = frozenset({"run", "end"})


E = TypeVar("E")


def decode(adapter: TypeAdapter[E], known: frozenset[str], sse: ServerSentEvent) -> E | None:
    """The typed event of one SSE event; None for an event type this client does not know
    (a newer server's), so that it is skipped rather than fatal."""
    if sse.event not in known:
        return None
    try:
        data = json.loads(sse.data)
        return adapter.validate_python({**data, "type": sse.event, "id": sse.id})
    except (ValueError, TypeError, ValidationError) as error:
        raise DropnetError(None, "invalid_event", f"the {sse.event!r} event {sse.id!r} is not "
                           f"what the client expects: {error}; received {sse.data[:300]!r}"
                           ) from error
