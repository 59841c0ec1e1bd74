"""The Server-Sent Events wire format (WHATWG HTML, "Parsing an event stream"), decoded from
lines: `event:`, `data:` (joined with newlines), `id:`, `retry:`; a blank line ends an event;
a line starting with `:` is a comment (keep-alive)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event: its type (default `message`), data, and the last event id seen
    on the stream (sent back as `Last-Event-ID` to resume after it)."""

    event: str
    data: str
    id: str | None


class SSEDecoder:
    """Feed it the stream's lines (without line terminators) one by one; `feed` answers an
    event when a blank line completes one. `retry_ms` is the reconnection delay the server
    last asked for (None: it did not)."""

    def __init__(self, last_event_id: str | None = None, retry_ms: int | None = None) -> None:
        self.last_event_id = last_event_id
        self.retry_ms = retry_ms
        self._event = ""
        self._data: list[str] = []
        # An id line takes effect when its event is dispatched: a stream cut between the two
        # resumes from the previous complete event.
        self._id = last_event_id

    def feed(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
        elif field == "id" and "\0" not in value:
            self._id = value
        elif field == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        event, data = self._event or "message", self._data
        self._event, self._data = "", []
        self.last_event_id = self._id
        if not data:  # the spec: an event without data is not dispatched
            return None
        return ServerSentEvent(event=event, data="\n".join(data), id=self.last_event_id)
