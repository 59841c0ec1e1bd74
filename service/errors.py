"""Errors the services raise; the API turns each into one JSON error shape and an HTTP status.

{"error": {"code": "...", "message": "...", "details": [...]}}
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from service.engine.errors import SpecError

MAX_JSONABLE_DEPTH = 32


@dataclass(frozen=True)
class ErrorDetail:
    """One problem: where (a JSON path such as model.layers[1].rate) and what is wrong."""

    path: str
    message: str
    type: str = "invalid"
    expected: str | None = None
    received: Any = None

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"path": self.path, "message": self.message, "type": self.type}
        if self.expected is not None:
            result["expected"] = self.expected
        if self.received is not None:
            result["received"] = jsonable(self.received)
        return result


def spec_detail(error: SpecError, path: str) -> ErrorDetail:
    """The engine's refusal of a value (a SpecError) as the problem at `path` in the request,
    e.g. "training.lr_schedule.decay" for the engine's field "lr_schedule.decay"."""
    return ErrorDetail(path, error.message, expected=error.expected, received=error.received)


def jsonable(value: Any, depth: int = 0) -> Any:
    """`value` made safe for a JSON response: NaN and infinities become strings (JSON has no
    such numbers) and anything nested deeper than `MAX_JSONABLE_DEPTH` is summarised."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple, dict)) and depth >= MAX_JSONABLE_DEPTH:
        return f"<{type(value).__name__} nested too deeply>"
    if isinstance(value, (list, tuple)):
        return [jsonable(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    return repr(value)


def json_path(loc: Sequence[Any], document: Any) -> str:
    """A pydantic error location as a JSON path, walking the input to drop union tags.

    ('model', 'layers', 1, 'dropout', 'rate') -> 'model.layers[1].rate'
    """
    path = ""
    current = document
    for index, element in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(current, dict):
            if element in current:
                current = current[element]
            elif not last:
                continue  # a union member's tag, not a key of the input
            path += f".{element}" if path else str(element)
        elif isinstance(current, list) and isinstance(element, int):
            current = current[element] if 0 <= element < len(current) else None
            path += f"[{element}]"
        elif current is None and not path:
            path = str(element)
        else:
            break  # inside a scalar: the rest are type labels of a union
    return path


@dataclass
class ServiceError(Exception):
    """A request the service refuses. `status` is the HTTP status the API answers with."""

    message: str
    details: list[ErrorDetail] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400

    def __str__(self) -> str:
        return self.message


class InvalidInput(ServiceError):
    code = "invalid_input"
    status = 422


class InvalidSpec(InvalidInput):
    code = "invalid_spec"


class NotFound(ServiceError):
    code = "not_found"
    status = 404


class Conflict(ServiceError):
    code = "conflict"
    status = 409


class TooManyJobs(ServiceError):
    code = "too_many_jobs"
    status = 429


class TooManyStreams(ServiceError):
    """This API process already serves as many event streams as it is allowed to."""

    code = "too_many_streams"
    status = 503


class PayloadTooLarge(ServiceError):
    code = "payload_too_large"
    status = 413


class MissingExtra(ServiceError):
    """A feature whose optional dependency (a pip extra) is not installed here."""

    code = "not_implemented"
    status = 501


class Unauthorized(ServiceError):
    code = "unauthorized"
    status = 401
