"""The error shape every non-2xx response carries."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorDetailPublic(BaseModel):
    path: str
    message: str
    type: str
    expected: str | None = None
    received: Any = None
    location: str | None = None


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: list[ErrorDetailPublic]


class ErrorResponse(BaseModel):
    error: ErrorInfo


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries declaring the error shape for `statuses`."""
    return {status: {"model": ErrorResponse} for status in statuses}
