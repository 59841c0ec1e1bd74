"""Opaque pagination cursors: base64url JSON, validated on the way back in."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Any

from service.errors import ErrorDetail, InvalidInput


def encode(value: Any) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise _invalid(cursor) from None


def _invalid(cursor: str) -> InvalidInput:
    return InvalidInput("invalid cursor", [ErrorDetail(
        "cursor", "not a cursor this server issued", expected="the next_cursor of a previous "
        "page", received=cursor[:100])])


def encode_row(created_at: dt.datetime, row_id: str) -> str:
    """A cursor pointing after a row of a newest-first list."""
    return encode([created_at.isoformat(), row_id])


def decode_row(cursor: str | None) -> tuple[dt.datetime, str] | None:
    if cursor is None:
        return None
    value = _decode(cursor)
    try:
        created, row_id = value
        when = dt.datetime.fromisoformat(created)
        if not isinstance(row_id, str) or when.tzinfo is None or "\x00" in row_id:
            raise ValueError
        when = when.astimezone(dt.UTC)  # year 1 at +14:00 does not exist in UTC
    except (TypeError, ValueError, OverflowError):
        raise _invalid(cursor) from None
    return when, row_id


def encode_step(step: int) -> str:
    return encode({"after": step})


def decode_step(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    value = _decode(cursor)
    step = value.get("after") if isinstance(value, dict) else None
    if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < 2**63:
        raise _invalid(cursor)
    return step
