"""The dashboard's page routes and static files, with the headers every page carries.

Pages hold no data: each one is a static HTML shell whose module script reads the ids from the
URL and asks the /v1 API (with the tab's API key), so the routes need no session and no owner.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"
PAGES_DIR = Path(__file__).parent / "pages"
STATIC_PATH = "/dashboard/static"

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])
"""Same origin only: no inline script or style, no remote origin, no plugins, no framing."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(PAGES_DIR / name, media_type="text/html; charset=utf-8",
                        headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


@router.get("/")
def job_list_page() -> FileResponse:
    """Every job with its status, progress and final test accuracy; the sweeps."""
    return _page("jobs.html")


@router.get("/jobs/{job_id}")
def job_page(job_id: str) -> FileResponse:
    """One job: loss, accuracy and rate curves, live; spec, attempts, predict panel."""
    return _page("job.html")


@router.get("/sweeps/{sweep_id}")
def sweep_page(sweep_id: str) -> FileResponse:
    """One sweep: test accuracy and gap against each swept value, every run's curve."""
    return _page("sweep.html")


class DashboardStatic(StaticFiles):
    """The vendored chart library and the page modules, with the pages' security headers."""

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result,
                      scope: Scope, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(SECURITY_HEADERS)
        return response


def install(app: FastAPI) -> None:
    """Serve the pages at /, /jobs/{id}, /sweeps/{id} and their files under STATIC_PATH."""
    app.include_router(router)
    app.mount(STATIC_PATH, DashboardStatic(directory=STATIC_DIR), name="dashboard-static")
