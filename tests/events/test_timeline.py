"""JobTimeline and SweepTimeline alone: ordering, filtering by cursor, rewinds, progress rate,
the end; and the event ids' format."""

from __future__ import annotations

import json

import pytest

from service.errors import InvalidInput
from service.events.cursors import JobCursor, SweepCursor
from service.events.reading import JobChange, JobSnapshot, Position
from service.events.timeline import JobTimeline, SweepTimeline
from service.store.metrics import KeyedPoint
from service.store.status_events import StatusEvent
from service.store.statuses import JobStatus

RUNNING, SUCCEEDED, QUEUED = JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.QUEUED


def snapshot(status: JobStatus = RUNNING, iteration: int = 0) -> JobSnapshot:
    return JobSnapshot(status, 1, None, iteration, 100, 50.0, {"test_accuracy": 0.9})


def status(seq: int, value: JobStatus, iteration: int = 0, job: str = "j") -> StatusEvent:
    return StatusEvent(job, seq, value, 1, None, iteration)


def points(*steps: int) -> list[KeyedPoint]:
    return [KeyedPoint(key, step, float(step), 1.0) for step in steps for key in ("a", "b")]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def kinds(events: list[dict[str, str]]) -> list[str]:
    return [e["event"] for e in events]


def test_status_events_interleave_with_points_by_iteration() -> None:
    timeline = JobTimeline(JobCursor())
    change = JobChange("j", Position(), snapshot(SUCCEEDED, 4),
                       [status(1, QUEUED), status(2, RUNNING), status(3, SUCCEEDED, 4)],
                       points(1, 2, 3, 4))
    events = timeline.events(change)
    assert kinds(events) == ["status", "status", "metrics", "status", "end"]
    assert [e["id"] for e in events] == ["1.0.0", "2.0.0", "2.4.0", "3.4.0", "3.4.0.end"]
    assert json.loads(events[-1]["data"])["metrics"] == {"test_accuracy": 0.9}
    assert timeline.closed


def test_what_the_cursor_already_has_is_never_sent_again() -> None:
    timeline = JobTimeline(JobCursor(2, 2, 0))
    change = JobChange("j", Position(), snapshot(iteration=3),
                       [status(1, QUEUED), status(2, RUNNING)], points(1, 2, 3))
    events = timeline.events(change)
    sent = [(p["key"], p["step"]) for e in events if e["event"] == "metrics"
            for p in json.loads(e["data"])["points"]]
    assert sent == [("a", 3), ("b", 3)]
    assert "status" not in kinds(events)


def test_a_rewound_attempt_does_not_resend_steps_but_a_new_stream_gets_them() -> None:
    seen = JobTimeline(JobCursor(2, 700, 700))
    rewritten = JobChange("j", Position(2, 500), snapshot(iteration=720),
                          [status(3, QUEUED, 700), status(4, RUNNING, 700)],
                          points(*range(501, 721)))
    events = seen.events(rewritten)
    steps = [p["step"] for e in events if e["event"] == "metrics"
             for p in json.loads(e["data"])["points"]]
    assert min(steps) == 701
    assert kinds(events)[:2] == ["status", "status"]
    fresh = JobTimeline(JobCursor(2, 500, 500))
    steps = [p["step"] for e in fresh.events(rewritten) if e["event"] == "metrics"
             for p in json.loads(e["data"])["points"]]
    assert min(steps) == 501


def test_status_events_past_an_incomplete_read_wait_for_the_next() -> None:
    timeline = JobTimeline(JobCursor(1, 0, 0))
    first = JobChange("j", Position(1, 0), snapshot(SUCCEEDED, 10),
                      [status(2, SUCCEEDED, 10)], points(1, 2), complete=False)
    assert kinds(timeline.events(first)) == ["metrics"]  # succeeded waits for step 10
    assert timeline.cursor.status == 1 and not timeline.closed
    rest = JobChange("j", Position(1, 2), snapshot(SUCCEEDED, 10),
                     [status(2, SUCCEEDED, 10)], points(3, 10))
    assert kinds(timeline.events(rest)) == ["metrics", "status", "end"]


def test_progress_at_most_every_half_second_and_only_forward() -> None:
    clock = Clock()
    timeline = JobTimeline(JobCursor(), clock=clock)

    def progress(iteration: int) -> list[str]:
        return kinds(timeline.events(JobChange("j", timeline.position, snapshot(
            iteration=iteration))))

    assert progress(10) == ["progress"]
    clock.now = 0.3
    assert progress(20) == []
    clock.now = 0.6
    assert progress(30) == ["progress"]
    clock.now = 2.0
    assert progress(25) == []  # a rewound attempt: never backwards on one stream
    assert timeline.cursor.iteration == 30


def test_non_finite_values_go_out_as_null() -> None:
    timeline = JobTimeline(JobCursor())
    change = JobChange("j", Position(), snapshot(QUEUED),
                       points=[KeyedPoint("test_loss", 1, float("inf"), 1.0)])
    (event,) = timeline.events(change)
    assert json.loads(event["data"])["points"][0]["value"] is None


def test_a_deleted_job_closes_the_stream_silently() -> None:
    timeline = JobTimeline(JobCursor())
    assert timeline.events(JobChange("j", Position(), None)) == []
    assert timeline.closed


def test_a_sweep_ends_once_every_run_is_known_terminal() -> None:
    timeline = SweepTimeline(["r1", "r2"], {"r1": {"training.seed": 1}}, SweepCursor((0, 0)))
    done = JobChange("r1", Position(), snapshot(SUCCEEDED),
                     [status(1, QUEUED, job="r1"), status(2, SUCCEEDED, job="r1")])
    events = timeline.events(done)
    assert kinds(events) == ["run", "run"]  # r2 not read yet: no end
    assert json.loads(events[1]["data"])["final"] == {
        "train_loss": None, "test_loss": None, "train_accuracy": None, "test_accuracy": 0.9}
    assert [e["id"] for e in events] == ["1.0", "2.0"]
    failed = JobChange("r2", Position(), snapshot(JobStatus.FAILED),
                       [status(1, JobStatus.FAILED, job="r2")])
    events = timeline.events(failed)
    assert kinds(events) == ["run", "end"]
    assert json.loads(events[-1]["data"]) == {"status": "failed",
                                              "counts": {"succeeded": 1, "failed": 1}}
    assert events[-1]["id"] == "2.1.end"


@pytest.mark.parametrize("text", ["", "1", "1.2", "1.2.3.4", "a.b.c", "1.-2.3", "1.2.3.done",
                                  "end", "1.2.٣"])
def test_job_ids_that_were_never_sent_are_refused_naming_the_header(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        JobCursor.parse(text)
    assert refused.value.details[0].path == "Last-Event-ID"


def test_ids_round_trip() -> None:
    for cursor in (JobCursor(), JobCursor(3, 1200, 1190), JobCursor(5, 4000, 4000, True)):
        assert JobCursor.parse(str(cursor)) == cursor
    assert SweepCursor.parse("1.2.3.end", 3) == SweepCursor((1, 2, 3), True)
    with pytest.raises(InvalidInput):
        SweepCursor.parse("1.2", 3)
