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


def parse(lines: Iterator[str]) -> Iterator[Event | Comment]:
    """Events and comments from the stream's lines (without line ends)."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if fields:
                yield Event(fields.get("event", "message"), fields["id"],
                            json.loads(fields["data"]))
                fields = {}
        elif line.startswith(":"):
            yield Comment(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value


async def aparse(lines: AsyncIterator[str]) -> AsyncIterator[Event | Comment]:
    fields: dict[str, str] = {}
    async for line in lines:
        if line == "":
            if fields:
                yield Event(fields.get("event", "message"), fields["id"],
                            json.loads(fields["data"]))
                fields = {}
        elif line.startswith(":"):
            yield Comment(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value


def steps_seen(events: list[Event]) -> list[tuple[str, int]]:
    """Every (key, step) the metrics events delivered, in order, repeats included."""
    return [(p["key"], p["step"]) for e in events if e.type == "metrics"
            for p in e.data["points"]]
