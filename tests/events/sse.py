"""A plain reader of the text/event-stream wire format (what the dashboard and client parse)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    type: str
    id: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Comment:
    text: str


class _Reader:
    """The wire format's state between lines: fields gathered until a blank line ends an event."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}

    def feed(self, line: str) -> Event | Comment | None:
        if line == "":
            fields, self.fields = self.fields, {}
            if not fields:
                return None
            return Event(fields.get("event", "message"), fields["id"], json.loads(fields["data"]))
        if line.startswith(":"):
            return Comment(line[1:].strip())
        name, _, value = line.partition(":")
        self.fields[name] = value[1:] if value.startswith(" ") else value
        return None


def parse(lines: Iterator[str]) -> Iterator[Event | Comment]:
    """Events and comments from the stream's lines (without line ends)."""
    reader = _Reader()
    for line in lines:
        if (item := reader.feed(line)) is not None:
            yield item


async def aparse(lines: AsyncIterator[str]) -> AsyncIterator[Event | Comment]:
    """The same, from an asynchronous stream of lines."""
    reader = _Reader()
    async for line in lines:
        if (item := reader.feed(line)) is not None:
            yield item


def steps_seen(events: list[Event]) -> list[tuple[str, int]]:
    """Every (key, step) the metrics events delivered, in order, repeats included."""
    return [(p["key"], p["step"]) for e in events if e.type == "metrics"
            for p in e.data["points"]]
