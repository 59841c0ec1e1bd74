"""The SSE wire format and the live-event contract, decoded from the exact bytes a server
sends (sse-starlette writes `event:`, `id:`, `data:` lines and a blank line, CRLF-ended)."""

from __future__ import annotations

import pytest

from service.client import DropnetError, EndEvent, MetricsEvent, ProgressEvent, StatusEvent
from service.client.events import (
    JOB_EVENT_TYPES,
    JOB_EVENTS,
    SWEEP_EVENT_TYPES,
    SWEEP_EVENTS,
    RunEvent,
    SweepEndEvent,
    decode,
)
from service.client.sse import ServerSentEvent, SSEDecoder

JOB_STREAM = (
    "event: status\r\nid: 1-0\r\ndata: {\"status\": \"running\", \"attempts\": 1, "
    "\"error\": null}\r\n\r\n"
    ": keep-alive\r\n\r\n"
    "event: progress\r\nid: 1-1\r\ndata: {\"iteration\": 20, \"total\": 100, "
    "\"iterations_per_second\": 412.5, \"eta_seconds\": 0.19}\r\n\r\n"
    "event: metrics\r\nid: 1-2\r\ndata: {\"points\": ["
    "{\"key\": \"batch_loss\", \"step\": 19, \"value\": 0.9, \"timestamp\": 1.0}, "
    "{\"key\": \"batch_loss\", \"step\": 20, \"value\": 0.8, \"timestamp\": 1.1}, "
    "{\"key\": \"test_accuracy\", \"step\": 20, \"value\": 0.75, \"timestamp\": 1.1}]}\r\n\r\n"
    "event: end\r\nid: 1-3\r\ndata: {\"status\": \"succeeded\", \"attempts\": 1, "
    "\"error\": null, \"metrics\": {\"test_accuracy\": 0.9}}\r\n\r\n"
)


def lines(stream: str) -> list[str]:
    """The stream split as httpx's iter_lines splits it (\\r\\n, \\n or \\r)."""
    return stream.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def decoded(stream: str, decoder: SSEDecoder | None = None) -> list[ServerSentEvent]:
    decoder = decoder or SSEDecoder()
    return [event for line in lines(stream) if (event := decoder.feed(line)) is not None]


def test_the_job_contract_decodes_to_typed_events() -> None:
    events = [decode(JOB_EVENTS, JOB_EVENT_TYPES, sse) for sse in decoded(JOB_STREAM)]
    status, progress, metrics, end = events
    assert status == StatusEvent(type="status", id="1-0", status="running", attempts=1,
                                 error=None)
    assert isinstance(progress, ProgressEvent) and progress.id == "1-1"
    assert (progress.iteration, progress.total, progress.eta_seconds) == (20, 100, 0.19)
    assert isinstance(metrics, MetricsEvent) and len(metrics.points) == 3
    assert metrics.latest() == {"batch_loss": 0.8, "test_accuracy": 0.75}
    assert isinstance(end, EndEvent) and end.status == "succeeded"
    assert end.metrics == {"test_accuracy": 0.9}


def test_the_sweep_contract_decodes_to_typed_events() -> None:
    stream = ("event: run\nid: 7\ndata: {\"job_id\": \"j1\", \"status\": \"succeeded\", "
              "\"parameters\": {\"training.seed\": 1}, \"final\": {\"train_loss\": 0.1, "
              "\"test_loss\": 0.2, \"train_accuracy\": 0.99, \"test_accuracy\": null}}\n\n"
              "event: end\nid: 8\ndata: {\"status\": \"succeeded\", "
              "\"counts\": {\"succeeded\": 2}}\n\n")
    run, end = [decode(SWEEP_EVENTS, SWEEP_EVENT_TYPES, sse) for sse in decoded(stream)]
    assert isinstance(run, RunEvent) and run.parameters == {"training.seed": 1}
    assert run.final is not None and run.final["test_accuracy"] is None
    assert end == SweepEndEvent(type="end", id="8", status="succeeded",
                                counts={"succeeded": 2})


def test_comments_multiline_data_and_default_type() -> None:
    (event,) = decoded(": hello\ndata: first\ndata:second\ndata\n\n")
    assert event == ServerSentEvent(event="message", data="first\nsecond\n", id=None)


def test_the_id_persists_and_takes_effect_at_dispatch() -> None:
    decoder = SSEDecoder()
    first, second = decoded("id: a\ndata: 1\n\ndata: 2\n\n", decoder)
    assert (first.id, second.id) == ("a", "a")  # an event without id: keeps the last one
    decoder.feed("id: b")  # the connection drops before this event's blank line
    assert decoder.last_event_id == "a"
    decoder.feed("data: 3")
    assert decoder.feed("").id == "b" and decoder.last_event_id == "b"


def test_retry_and_events_without_data() -> None:
    decoder = SSEDecoder()
    assert decoded("retry: 2500\n\nevent: status\n\n", decoder) == []
    assert decoder.retry_ms == 2500
    decoder.feed("retry: soon")  # not digits: ignored, as the spec says
    assert decoder.retry_ms == 2500


def test_unknown_event_types_are_skipped_and_broken_data_is_an_error() -> None:
    newer = ServerSentEvent(event="checkpoint", data="{}", id="9")
    assert decode(JOB_EVENTS, JOB_EVENT_TYPES, newer) is None
    broken = ServerSentEvent(event="progress", data="{\"iteration\": \"ten\"}", id="10")
    with pytest.raises(DropnetError) as refused:
        decode(JOB_EVENTS, JOB_EVENT_TYPES, broken)
    assert refused.value.code == "invalid_event" and "'progress'" in refused.value.message
