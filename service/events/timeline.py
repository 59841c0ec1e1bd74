"""JobTimeline and SweepTimeline: reads of a job (JobChange) turned into the events a stream
sends, each with the id that resumes right after it. Pure state, no I/O.

An event is a dict as sse-starlette takes it: {"event": type, "id": str, "data": json}.

Exactly once: a job stream sends each status event once (by its seq) and each metric step
once (by step: every key of a step is committed in one transaction and goes out together).
A resumed attempt rewrites the steps after its checkpoint; a stream that already sent a step
does not send it again (the rewrite recomputes it bit for bit from the checkpoint: the same
values, only their timestamps differ), while a stream that had not yet reached it sends the
rewritten row. See docs/events.md.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

from service.store.metrics import KeyedPoint
from service.store.status_events import StatusEvent
from service.store.statuses import TERMINAL, JobStatus, sweep_status
from service.store.sweep_summary import FINAL_METRICS

from .cursors import JobCursor, SweepCursor
from .reading import JobChange, JobSnapshot, Position

PROGRESS_INTERVAL_SECONDS = 0.5
"""At most 2 `progress` events per second (the issue's limit)."""

Event = dict[str, str]


def _event(kind: str, event_id: object, data: dict[str, Any]) -> Event:
    return {"event": kind, "id": str(event_id), "data": _json(data)}


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: such a value is sent as null."""
    return value if value is not None and math.isfinite(value) else None


def _metrics(metrics: dict[str, float]) -> dict[str, float | None]:
    return {key: _finite(value) for key, value in metrics.items()}


class JobTimeline:
    """One job stream's state: its cursor, and whether it has ended."""

    def __init__(self, cursor: JobCursor, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cursor = cursor
        self.closed = cursor.ended  # the end was sent, or the job no longer exists
        self._clock = clock
        self._last_progress = -math.inf

    @property
    def position(self) -> Position:
        return Position(self.cursor.status, self.cursor.step)

    def behind(self, change: JobChange) -> bool:
        """Whether `change` starts past this stream (it must read the gap itself first)."""
        return change.after.status > self.cursor.status or change.after.step > self.cursor.step

    def events(self, change: JobChange) -> list[Event]:
        """The events `change` holds for this stream, in order; advances the cursor.

        Status events and metric points interleave by iteration: a status event recorded at
        iteration i follows the points up to step i. When the change's points are incomplete
        (more follow), status events past its last step wait for the next read."""
        if self.closed:
            return []
        if change.snapshot is None:  # deleted: nothing more will come
            self.closed = True
            return []
        statuses = [e for e in change.statuses if e.seq > self.cursor.status]
        points = [p for p in change.points if p.step > self.cursor.step]
        out: list[Event] = []
        for status in statuses:
            upto = 0
            while upto < len(points) and points[upto].step <= status.iteration:
                upto += 1
            if upto == len(points) and not change.complete:
                break  # the points before it are not all read yet
            out += self._send_points(points[:upto], change)
            points = points[upto:]
            out.append(self._send_status(status))
        out += self._send_points(points, change)
        out += self._progress(change.snapshot)
        if (change.complete and change.snapshot.status in TERMINAL
                and self.cursor.status >= change.position.status):
            out.append(self._end(change.snapshot))
        return out

    def _send_points(self, points: list[KeyedPoint], change: JobChange) -> list[Event]:
        if not points:
            return []
        self.cursor = JobCursor(self.cursor.status, points[-1].step, self.cursor.iteration)
        span = (points[0].step, points[-1].step)
        data = change.encoded.get(span)
        if data is None:
            data = change.encoded[span] = _json({"points": [
                {"key": p.key, "step": p.step, "value": _finite(p.value),
                 "timestamp": p.timestamp} for p in points]})
        return [{"event": "metrics", "id": str(self.cursor), "data": data}]

    def _send_status(self, status: StatusEvent) -> Event:
        self.cursor = JobCursor(status.seq, self.cursor.step, self.cursor.iteration)
        return _event("status", self.cursor, {"status": status.status.value,
                                              "attempts": status.attempts,
                                              "error": status.error})

    def _progress(self, snapshot: JobSnapshot) -> list[Event]:
        now = self._clock()
        if (snapshot.status != JobStatus.RUNNING or snapshot.iteration <= self.cursor.iteration
                or now - self._last_progress < PROGRESS_INTERVAL_SECONDS):
            return []
        self._last_progress = now
        self.cursor = JobCursor(self.cursor.status, self.cursor.step, snapshot.iteration)
        return [_event("progress", self.cursor, snapshot.progress)]

    def _end(self, snapshot: JobSnapshot) -> Event:
        self.cursor = JobCursor(self.cursor.status, self.cursor.step, self.cursor.iteration,
                                ended=True)
        self.closed = True
        return _event("end", self.cursor, {"status": snapshot.status.value,
                                           "attempts": snapshot.attempts,
                                           "error": snapshot.error,
                                           "metrics": _metrics(snapshot.latest_metrics)})


class SweepTimeline:
    """One sweep stream's state: the last status seq sent of each run, their statuses."""

    def __init__(self, runs: list[str], parameters: dict[str, dict[str, Any]],
                 cursor: SweepCursor) -> None:
        self.runs = runs
        self.parameters = parameters
        self.seq = dict(zip(runs, cursor.seq, strict=True))
        self.closed = cursor.ended
        self._status: dict[str, JobStatus | None] = {}  # known runs; None: deleted

    def position(self, job_id: str) -> Position:
        return Position(self.seq[job_id], 0)

    def behind(self, change: JobChange) -> bool:
        return change.after.status > self.seq[change.job_id]

    @property
    def cursor(self) -> SweepCursor:
        return SweepCursor(tuple(self.seq[run] for run in self.runs), ended=self.closed)

    def events(self, change: JobChange) -> list[Event]:
        """`run` events for the change's new status events; `end` once every run is known
        to be terminal."""
        if self.closed:
            return []
        out: list[Event] = []
        job_id = change.job_id
        if change.snapshot is None:
            self._status[job_id] = None
        elif change.position.status <= self.seq[job_id]:
            self._status[job_id] = change.snapshot.status  # up to date: the row's status
        for status in change.statuses:
            if status.seq <= self.seq[job_id]:
                continue
            self.seq[job_id] = status.seq
            self._status[job_id] = status.status
            final = None
            if status.status in TERMINAL and change.snapshot is not None:
                latest = change.snapshot.latest_metrics
                final = {key: _finite(latest.get(key)) for key in FINAL_METRICS}
            out.append(_event("run", self.cursor, {
                "job_id": job_id, "status": status.status.value,
                "parameters": self.parameters.get(job_id, {}), "final": final}))
        return out + self._end()

    def _end(self) -> list[Event]:
        if len(self._status) < len(self.runs) or any(
                status is not None and status not in TERMINAL
                for status in self._status.values()):
            return []
        self.closed = True
        counts: dict[str, int] = {}
        for status in self._status.values():
            if status is not None:
                counts[status.value] = counts.get(status.value, 0) + 1
        if not counts:  # the sweep was deleted
            return []
        return [_event("end", self.cursor, {"status": sweep_status(counts), "counts": counts})]
