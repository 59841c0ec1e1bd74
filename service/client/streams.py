"""Following an event stream across dropped connections, shared by `Client.follow` and
`AsyncClient.follow` (sans I/O).

`EventStream` says what to request (with `Last-Event-ID` once an event has arrived), turns
the stream's lines into typed events, and decides how long to wait before reconnecting when
a connection drops or closes before the `end` event.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import TypeAdapter

from .errors import DropnetError
from .events import decode
from .operations import Request
from .sse import SSEDecoder

E = TypeVar("E")

# Statuses of a server that is restarting or behind a proxy that lost it: retried.
RETRIED_STATUSES = (502, 503, 504)
# The answer to a Last-Event-ID that was the stream's `end` event: nothing follows.
NOTHING_FOLLOWS = 204


class EventStream(Generic[E]):
    """One followed stream at `path`. `max_reconnects`: consecutive failed connections
    (dropped before any event arrived) before giving up; `reconnect_seconds`: the wait
    before reconnecting unless the server's `retry:` says otherwise."""

    def __init__(self, path: str, adapter: TypeAdapter[E], known: frozenset[str], *,
                 last_event_id: str | None, since_now: bool, max_reconnects: int,
                 reconnect_seconds: float) -> None:
        self.path = path
        self.ended = False
        self._adapter = adapter
        self._known = known
        self._since_now = since_now
        self._max_reconnects = max_reconnects
        self._reconnect_seconds = reconnect_seconds
        self._failures = 0
        self._decoder = SSEDecoder(last_event_id)

    @property
    def last_event_id(self) -> str | None:
        return self._decoder.last_event_id

    def request(self) -> Request:
        """The next connection's request: resumes after the last event received; the first
        one, without an id, starts from the backlog or (since_now) from now."""
        last_id = self._decoder.last_event_id
        # A fresh decoder per connection: a half-received event is dropped, not completed
        # by the next connection's lines.
        self._decoder = SSEDecoder(last_id, self._decoder.retry_ms)
        headers = {"Accept": "text/event-stream"}
        if last_id is not None:
            return Request("GET", self.path, headers={**headers, "Last-Event-ID": last_id})
        return Request("GET", self.path, headers=headers,
                       params={"since": "now"} if self._since_now else {})

    def feed(self, line: str) -> E | None:
        """The typed event a line completes, if any; marks the stream ended at `end`."""
        sse = self._decoder.feed(line)
        if sse is None:
            return None
        event: E | None = decode(self._adapter, self._known, sse)
        if event is not None:
            self._failures = 0
            self.ended = sse.event == "end"
        return event

    def dropped(self, reason: str) -> float:
        """Seconds to wait before reconnecting after the connection failed for `reason`;
        raises DropnetError after `max_reconnects` failures in a row."""
        self._failures += 1
        if self._failures > self._max_reconnects:
            raise DropnetError(None, "stream_lost", f"{self.path}: {reason}; gave up after "
                               f"{self._max_reconnects} reconnections without an event")
        retry_ms = self._decoder.retry_ms
        delay = retry_ms / 1000 if retry_ms is not None else self._reconnect_seconds
        return delay * min(self._failures, 5)
