"""Event ids: where a stream is, so that `Last-Event-ID` resumes exactly after an event.

A job stream's id is "<status>.<step>.<iteration>[.end]": the last status event's seq sent,
the last metric step sent (every key of a step goes out together) and the last progress
iteration sent; ".end" once the `end` event is out. A sweep stream's id is the last status
seq sent of each of its runs, in the sweep's run order, joined by ".", and ".end" likewise.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.errors import ErrorDetail, InvalidInput

HEADER = "Last-Event-ID"
END = "end"


@dataclass(frozen=True)
class JobCursor:
    """What a job stream has sent: status events up to `status`, metric steps up to `step`,
    progress up to `iteration`; `ended` once the `end` event is out."""

    status: int = 0
    step: int = 0
    iteration: int = 0
    ended: bool = False

    def __str__(self) -> str:
        text = f"{self.status}.{self.step}.{self.iteration}"
        return f"{text}.{END}" if self.ended else text

    @classmethod
    def parse(cls, text: str) -> JobCursor:
        """The cursor of an id this stream sent; InvalidInput (422) naming the header else."""
        numbers, ended = _split(text, "<status>.<step>.<iteration>[.end]")
        if len(numbers) != 3:
            raise _invalid(text, "<status>.<step>.<iteration>[.end]")
        status, step, iteration = numbers
        return cls(status, step, iteration, ended)


@dataclass(frozen=True)
class SweepCursor:
    """What a sweep stream has sent: each run's status events up to `seq[run]`."""

    seq: tuple[int, ...]
    ended: bool = False

    def __str__(self) -> str:
        text = ".".join(map(str, self.seq))
        return f"{text}.{END}" if self.ended else text

    @classmethod
    def parse(cls, text: str, runs: int) -> SweepCursor:
        expected = f"{runs} numbers joined by '.' (one per run), then optionally .end"
        numbers, ended = _split(text, expected)
        if len(numbers) != runs:
            raise _invalid(text, expected)
        return cls(tuple(numbers), ended=ended)


def _split(text: str, expected: str) -> tuple[list[int], bool]:
    parts = text.strip().split(".")
    ended = parts[-1] == END
    if ended:
        parts = parts[:-1]
    if not all(part.isascii() and part.isdigit() and len(part) <= 18 for part in parts):
        raise _invalid(text, expected)
    return [int(part) for part in parts], ended


def _invalid(text: str, expected: str) -> InvalidInput:
    return InvalidInput(f"invalid {HEADER} header", [ErrorDetail(
        HEADER, "must be the id of an event this stream sent", type="invalid_event_id",
        expected=expected, received=text[:200])])
