"""Argument checks shared by the layers: each raises SpecError naming the field and the rule."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .errors import SpecError


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def integer(value: Any, field: str, *, minimum: int | None = None,
            maximum: int | None = None) -> int:
    """`value` as an int in [minimum, maximum]."""
    bounds = _bounds_text(minimum, maximum)
    if not _is_int(value):
        raise SpecError("invalid value", field=field, expected=f"an integer{bounds}",
                        received=value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise SpecError("out of range", field=field, expected=f"an integer{bounds}", received=value)
    return value


def number(
    value: Any,
    field: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_maximum: float | None = None,
    exclusive_minimum: float | None = None,
) -> float:
    """`value` as a finite float within the given bounds."""
    parts = []
    if minimum is not None:
        parts.append(f">= {minimum}")
    if exclusive_minimum is not None:
        parts.append(f"> {exclusive_minimum}")
    if maximum is not None:
        parts.append(f"<= {maximum}")
    if exclusive_maximum is not None:
        parts.append(f"< {exclusive_maximum}")
    expected = "a finite number" + (" " + " and ".join(parts) if parts else "")
    if not _is_number(value) or not math.isfinite(value):
        raise SpecError("invalid value", field=field, expected=expected, received=value)
    ok = (
        (minimum is None or value >= minimum)
        and (maximum is None or value <= maximum)
        and (exclusive_maximum is None or value < exclusive_maximum)
        and (exclusive_minimum is None or value > exclusive_minimum)
    )
    if not ok:
        raise SpecError("out of range", field=field, expected=expected, received=value)
    return float(value)


def choice(value: Any, field: str, options: Sequence[str]) -> str:
    """`value` as one of `options`."""
    if not isinstance(value, str) or value not in options:
        expected = "one of " + ", ".join(repr(o) for o in options)
        raise SpecError("invalid value", field=field, expected=expected, received=value)
    return value


def pair(value: Any, field: str, *, minimum: int = 1,
         maximum: int | None = None) -> tuple[int, int]:
    """An int or a pair of ints, as a (height, width) tuple."""
    if _is_int(value):
        value = (value, value)
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(_is_int(v) for v in value)
    ):
        raise SpecError(
            "invalid value", field=field, expected="an integer or a pair of integers",
            received=value,
        )
    for v in value:
        integer(v, field, minimum=minimum, maximum=maximum)
    return (int(value[0]), int(value[1]))


def _bounds_text(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""
