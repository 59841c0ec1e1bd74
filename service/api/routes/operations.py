"""GET /metrics: Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST

from service.telemetry import scrape

from ..deps import StateDep

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def prometheus_metrics(state: StateDep) -> Response:
    """Jobs by status, queue depth, training speed, metric rows written, request latency."""
    window = max(10.0, 5 * state.settings.heartbeat_seconds)
    body = await run_in_threadpool(scrape, state.db, window)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
