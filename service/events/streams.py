"""The event streams the routes serve: checks before the stream starts (owner, Last-Event-ID,
capacity), then an async generator of events fed by the hub.

A stream first sends its backlog (everything after its cursor, read by itself), then the
changes the hub reads. A change that starts past the stream (the hub read further than this
stream had: a new stream, a rewound attempt, an overflowed queue) makes the stream read the
gap itself first, so no event is skipped; events it already sent are filtered by its cursor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal

import anyio.to_thread

from service.jobs import lifecycle
from service.store import metrics as metric_rows
from service.store import status_events
from service.store import sweeps as sweep_rows
from service.sweeps import service as sweeps

from .cursors import JobCursor, SweepCursor
from .hub import EventHub, Subscription
from .reading import JobChange, Position, read_change
from .timeline import Event, JobTimeline, SweepTimeline

Since = Literal["now"]


@dataclass(frozen=True)
class Stream:
    """An opened stream: its events, or None when the client already has them all (it
    resumes after the `end` event: the route answers 204, so EventSource stops)."""

    events: AsyncIterator[Event] | None


async def open_job_stream(hub: EventHub, job_id: str, *, owner: str,
                          last_event_id: str | None, since: Since | None) -> Stream:
    """The stream of job `job_id` for `owner`: after `last_event_id`, else (since="now") from
    the job's current state, else from its first event. NotFound (404) for someone else's
    job, InvalidInput (422) for an id this stream never sent, TooManyStreams (503)."""
    cursor = JobCursor.parse(last_event_id) if last_event_id is not None else None

    def check() -> JobCursor:
        with hub.db.read() as session:
            job = lifecycle.get_owned(session, job_id, owner)
            if cursor is not None:
                return cursor
            if since == "now":
                return JobCursor(status_events.last_seq(session, [job_id])[job_id],
                                 metric_rows.last_step(session, job_id), job.iteration)
            return JobCursor()

    start = await anyio.to_thread.run_sync(check)
    if start.ended:
        return Stream(None)
    hub.check_capacity()
    return Stream(_job_events(hub, job_id, JobTimeline(start)))


async def open_sweep_stream(hub: EventHub, sweep_id: str, *, owner: str,
                            last_event_id: str | None, since: Since | None) -> Stream:
    """The stream of sweep `sweep_id`'s runs for `owner`, as open_job_stream for a job."""

    def check() -> SweepTimeline:
        with hub.db.read() as session:
            sweep = sweeps.get_owned(session, sweep_id, owner)
            runs = [job.id for job in sweep_rows.runs(session, sweep_id)]
            if last_event_id is not None:
                cursor = SweepCursor.parse(last_event_id, len(runs))
            elif since == "now":
                last = status_events.last_seq(session, runs)
                cursor = SweepCursor(tuple(last[run] for run in runs))
            else:
                cursor = SweepCursor((0,) * len(runs))
            return SweepTimeline(runs, dict(sweep.run_parameters), cursor)

    timeline = await anyio.to_thread.run_sync(check)
    if timeline.closed:
        return Stream(None)
    hub.check_capacity()
    return Stream(_sweep_events(hub, timeline))


async def _job_events(hub: EventHub, job_id: str, timeline: JobTimeline
                      ) -> AsyncIterator[Event]:
    async with hub.subscribe([job_id], points=True) as subscription:
        async for event in _catch_up(hub, [job_id], lambda _: timeline.position,
                                     timeline.events, points=True):
            yield event
        async for event in _follow(hub, subscription, timeline.behind, timeline.events,
                                   lambda: timeline.closed, lambda _: timeline.position,
                                   points=True):
            yield event


async def _sweep_events(hub: EventHub, timeline: SweepTimeline) -> AsyncIterator[Event]:
    async with hub.subscribe(timeline.runs, points=False) as subscription:
        async for event in _catch_up(hub, timeline.runs, timeline.position, timeline.events,
                                     points=False):
            yield event
        async for event in _follow(hub, subscription, timeline.behind, timeline.events,
                                   lambda: timeline.closed, timeline.position, points=False):
            yield event


async def _follow(hub: EventHub, subscription: Subscription,
                  behind: Callable[[JobChange], bool],
                  events: Callable[[JobChange], list[Event]], closed: Callable[[], bool],
                  position: Callable[[str], Position], *, points: bool
                  ) -> AsyncIterator[Event]:
    """The hub's changes as events, until the timeline closes."""
    while not closed():
        change = await subscription.next()
        if subscription.overflowed:
            subscription.overflowed = False
            stale = sorted(subscription.job_ids)
        else:
            stale = [change.job_id] if behind(change) else []
        async for event in _catch_up(hub, stale, position, events, points=points):
            yield event
        for event in events(change):
            yield event


async def _catch_up(hub: EventHub, job_ids: list[str], position: Callable[[str], Position],
                    events: Callable[[JobChange], list[Event]], *, points: bool
                    ) -> AsyncIterator[Event]:
    """Read `job_ids` from where this stream is (not the hub), a chunk of points at a time
    (one worker-thread read per chunk for all of them), until complete; their events."""
    limit = hub.settings.events_max_points_per_event

    def read(pending: list[str]) -> list[JobChange]:
        with hub.db.read() as session:
            return [read_change(session, job_id, position(job_id), points=points,
                                max_points=limit) for job_id in pending]

    pending = job_ids
    while pending:
        changes = await anyio.to_thread.run_sync(read, pending)
        for change in changes:
            for event in events(change):
                yield event
        pending = [change.job_id for change in changes if not change.complete]
