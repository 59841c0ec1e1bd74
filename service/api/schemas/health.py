"""Readiness."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, dict[str, Any]]
