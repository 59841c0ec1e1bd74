"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from .. import readiness
from ..deps import StateDep
from ..schemas.health import Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses={
    503: {"model": Readiness, "description": "not ready; `checks` says why"}})
async def readyz(state: StateDep) -> JSONResponse:
    """Ready when the database answers, its schema is at the migrations' head, and the
    workers are alive (local) or have been seen recently (Celery)."""
    checks = await run_in_threadpool(readiness.checks, state)
    ready = readiness.passed(checks)
    return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks},
                        status_code=200 if ready else 503)
