"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from service.store.schema import answering_revision, head_revision

from ..deps import AppState, StateDep
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
    checks = await run_in_threadpool(_checks, state)
    ready = all(check["ok"] for check in checks.values())
    return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks},
                        status_code=200 if ready else 503)


def _checks(state: AppState) -> dict[str, dict[str, Any]]:
    checks: dict[str, dict[str, Any]] = {}
    try:
        current = answering_revision(state.db.engine)
        head = head_revision()
        checks["database"] = {"ok": True}
        checks["migrations"] = {"ok": current == head, "current": current, "head": head}
    except Exception as error:  # the point of a readiness check: report, never raise
        checks["database"] = {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
    try:
        checks["workers"] = state.executor.health()
    except Exception as error:
        checks["workers"] = {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
    return checks
