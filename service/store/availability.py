"""Which database errors mean "the database cannot serve right now" rather than a bug.

The API answers those with 503 and Retry-After (or 507 when the disk is full) instead of 500;
the job runner treats them as transient.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import exc


class Unavailable(StrEnum):
    UNREACHABLE = "unreachable"
    """The server is down, restarting, or dropped the connection; the pool is exhausted."""
    FULL = "full"
    """The disk under the database is full."""


_FULL_MESSAGES = ("database or disk is full", "no space left on device", "disk full",
                  "could not extend file")


def unavailable(error: BaseException) -> Unavailable | None:
    """Why the database cannot serve now, or None when `error` is not about availability."""
    text = str(error).lower()
    if isinstance(error, exc.DBAPIError) and any(m in text for m in _FULL_MESSAGES):
        return Unavailable.FULL
    if isinstance(error, exc.TimeoutError):  # no connection left in the pool in time
        return Unavailable.UNREACHABLE
    if isinstance(error, (exc.OperationalError, exc.InterfaceError)):
        return Unavailable.UNREACHABLE
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return Unavailable.UNREACHABLE
    return None
