"""service.dashboard: the page routes, the switch that turns them off, and the files the wheel
ships (package-data), without a browser."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from service.dashboard import pages
from service.store.session import Database
from service.workers.executor import NoExecutor

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "service" / "dashboard"


def test_pages_are_html_shells_with_the_policy_and_no_inline_code(settings: Settings,
                                                                  db: Database):
    with TestClient(create_app(settings, db=db, executor=NoExecutor())) as client:
        for path, module in [("/", "jobs-page.js"), ("/jobs/abc", "job-page.js"),
                             ("/sweeps/abc", "sweep-page.js")]:
            response = client.get(path)
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/html; charset=utf-8"
            assert response.headers["content-security-policy"] == pages.CONTENT_SECURITY_POLICY
            html = response.text
            assert f'<script type="module" src="/dashboard/static/js/{module}">' in html
            # Nothing the policy would block: no inline script body, style or handler.
            assert "<style" not in html and " style=" not in html and " on" not in html
            assert html.count("<script") == html.count("></script>") == 2
        assert client.get("/dashboard/static/nothing.js").status_code == 404
        # The pages are not API operations.
        assert not any(path in client.get("/openapi.json").json()["paths"]
                       for path in ["/", "/jobs/{job_id}", "/sweeps/{sweep_id}"])


def test_dashboard_false_serves_the_api_alone(database_url: str, db: Database):
    settings = Settings(database_url=database_url, workers=0, dashboard=False, _env_file=None)
    with TestClient(create_app(settings, db=db, executor=NoExecutor())) as client:
        assert client.get("/").status_code == 404
        assert client.get("/dashboard/static/dashboard.css").status_code == 404
        assert client.get("/v1/jobs").status_code == 200


def test_the_wheel_ships_every_dashboard_file():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = config["package-data"]["service.dashboard"]
    files = [path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*")
             if path.is_file() and path.suffix != ".py" and "__pycache__" not in path.parts]
    assert len(files) >= 15
    unshipped = [name for name in files
                 if not any(fnmatch.fnmatch(name, pattern) for pattern in patterns)]
    assert unshipped == []


def test_no_page_module_writes_markup_from_strings():
    """Every user string reaches the page as text: no innerHTML, outerHTML,
    insertAdjacentHTML or document.write in the page modules."""
    for module in (PACKAGE / "static" / "js").glob("*.js"):
        source = module.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, f"{module.name} uses {sink}"
