"""/v1/jobs/{id}/metrics: metric keys and their history (paged, downsampled or CSV)."""

from __future__ import annotations

import csv
import io
import re
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from service.errors import ErrorDetail, InvalidInput, NotFound
from service.jobs import lifecycle
from service.store import metrics as metric_rows

from .. import cursors
from ..deps import Owner, ReadSession, SettingsDep
from ..schemas.errors import responses
from ..schemas.metrics import MetricKeys, MetricKeySummary, MetricSeriesPage

router = APIRouter(prefix="/v1/jobs/{job_id}/metrics", tags=["metrics"])

MAX_POINTS_CAP = 100_000


@router.get("", response_model=MetricKeys, responses=responses(401, 404))
def metric_keys(job_id: str, session: ReadSession, owner: Owner) -> MetricKeys:
    """Each metric key with its count, first and last step, and last value."""
    lifecycle.get_owned(session, job_id, owner)
    return MetricKeys(job_id=job_id, data=[
        MetricKeySummary(key=s.key, count=s.count, first_step=s.first_step,
                         last_step=s.last_step, last_value=s.last_value)
        for s in metric_rows.summaries(session, job_id)])


@router.get("/{key}", response_model=MetricSeriesPage, responses={
    200: {"content": {"text/csv": {}}, "description": "the series (JSON, or CSV with "
                                                      "format=csv)"},
    **responses(401, 404, 422)})
def metric_history(
    job_id: str, key: str, session: ReadSession, owner: Owner, settings: SettingsDep,
    start_step: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    end_step: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1)] = 1000,
    cursor: str | None = None,
    max_points: Annotated[int | None, Query(ge=2, le=MAX_POINTS_CAP)] = None,
    format: Literal["json", "csv"] = "json",
) -> Response:
    """Points in step order. Paged with `limit`/`cursor` (`next_cursor` is null on the last
    page), or `max_points=N`: at most N points keeping the first, the last, and each bucket's
    minimum and maximum, computed in the database."""
    lifecycle.get_owned(session, job_id, owner)
    if start_step is not None and end_step is not None and end_step < start_step:
        raise InvalidInput("empty step range", [ErrorDetail(
            "end_step", "must not be below start_step", expected=f">= {start_step}",
            received=end_step)])
    series = metric_rows.series_id(session, job_id, key)
    if series is None:
        raise NotFound(f"job {job_id} has no metric {key!r}")
    next_cursor = None
    if max_points is not None:
        if cursor is not None:
            raise InvalidInput("max_points returns one page", [ErrorDetail(
                "cursor", "cannot be combined with max_points", received=cursor)])
        points = metric_rows.downsample(session, series, start_step=start_step,
                                        end_step=end_step, max_points=max_points)
    else:
        limit = min(limit, settings.page_limit_max)
        points = metric_rows.page(session, series, start_step=start_step, end_step=end_step,
                                  after_step=cursors.decode_step(cursor), limit=limit + 1)
        if len(points) > limit:
            points = points[:limit]
            next_cursor = cursors.encode_step(points[-1].step)
    if format == "csv":
        return _csv(points, job_id, key, next_cursor)
    # Built by hand: pydantic would validate 10,000 points for nothing.
    body = {"key": key, "points": [{"step": p.step, "value": p.value, "timestamp": p.timestamp}
                                   for p in points],
            "next_cursor": next_cursor, "downsampled": _bucketed(points, max_points)}
    return JSONResponse(body)


def _bucketed(points: list[metric_rows.Point], max_points: int | None) -> bool:
    """Whether `max_points` reduced the range to its buckets' extremes (it spans more steps
    than `max_points`; a shorter range is answered whole)."""
    return max_points is not None and bool(points) and (
        points[-1].step - points[0].step + 1 > max_points)


def _csv(points: list[metric_rows.Point], job_id: str, key: str,
         next_cursor: str | None) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["step", "value", "timestamp"])
    writer.writerows((p.step, repr(p.value), repr(p.timestamp)) for p in points)
    filename = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{job_id}-{key}")
    headers = {"Content-Disposition": f'attachment; filename="{filename}.csv"'}
    if next_cursor:
        headers["X-Next-Cursor"] = next_cursor
    return Response(out.getvalue(), media_type="text/csv", headers=headers)

