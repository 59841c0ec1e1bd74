"""Metric history resources."""

from __future__ import annotations

from pydantic import BaseModel


class MetricKeySummary(BaseModel):
    key: str
    count: int
    first_step: int | None
    last_step: int | None
    last_value: float | None


class MetricKeys(BaseModel):
    job_id: str
    data: list[MetricKeySummary]


class MetricPointPublic(BaseModel):
    step: int
    value: float
    timestamp: float


class MetricSeriesPage(BaseModel):
    key: str
    points: list[MetricPointPublic]
    next_cursor: str | None
    downsampled: bool
