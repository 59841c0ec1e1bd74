"""Browser tests: Debian's Chromium driven by Playwright against a real `dropnet serve`.

Playwright's own browser download cannot work on these machines, so the tests launch
/usr/bin/chromium (installed by `.ci/run` with apt when missing). Without it they skip with the
reason, or fail under DROPNET_TEST_REQUIRE_SERVICES=1, as tests/conftest.py treats the servers.
Screenshots go to .ci/artifacts/ (kept by CI, ignored by git).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.e2e.conftest import Server, serve  # noqa: F401  (the `serve` fixture, reused)

CHROMIUM = Path(os.environ.get("DROPNET_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / ".ci" / "artifacts"

# Small, fast jobs: a 64-32-10 MLP with dropout on the digits.
DIGITS_MODEL = {"input_shape": [64], "layers": [
    {"type": "dense", "units": 32, "activation": "relu"},
    {"type": "dropout", "rate": 0.3},
    {"type": "dense", "units": 10, "activation": "softmax"}]}


def digits_job(name: str, iterations: int, eval_every: int = 20) -> dict[str, Any]:
    return {"name": name, "model": DIGITS_MODEL,
            "data": {"dataset": "digits", "test_fraction": 0.25},
            "training": {"iterations": iterations, "batch_size": 32, "seed": 0,
                         "eval_every": eval_every,
                         "optimizer": {"type": "sgd", "learning_rate": 0.1, "momentum": 0.9},
                         "dropout_schedule": {"type": "step", "every": max(1, iterations // 3),
                                              "delta": -0.1, "min": 0.1}}}


SERVER_ENV = {"DROPNET_WORKERS": "1", "DROPNET_BLAS_THREADS": "1",
              "DROPNET_HEARTBEAT_SECONDS": "0.2", "DROPNET_POLL_SECONDS": "0.2"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Not for the session: Playwright's sync API keeps an
    asyncio loop running in the main thread while it is open, and the tests that pytest-xdist
    runs after these on the same worker call asyncio.run()."""
    if not CHROMIUM.exists():
        message = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if REQUIRE_SERVICES:
            pytest.fail(message + " (DROPNET_TEST_REQUIRE_SERVICES=1)")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=["--no-sandbox"])
        yield launched
        launched.close()


@dataclass
class Tab:
    """A browser page that records what went wrong in it: script errors, console errors and
    Content-Security-Policy violations."""

    page: Any
    errors: list[str] = field(default_factory=list)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def violations(self) -> list[str]:
        return self.page.evaluate("window.__cspViolations || []")


# Counts CSP violations from the first script on: added before any page script runs.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI));
"""


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.set_default_timeout(60_000)
    opened = Tab(page)
    page.on("pageerror", lambda error: opened.errors.append(f"page error: {error}"))
    page.on("console", lambda message: opened.errors.append(f"console: {message.text}")
            if message.type == "error" else None)
    yield opened
    context.close()


# A function, not an expression string: the pages' policy forbids eval, which Playwright would
# need for a string.
ATTRIBUTE_IS = ("([selector, name, value]) => "
                "document.querySelector(selector)?.getAttribute(name) === value")


def wait_for_attribute(page: Any, selector: str, name: str, value: object) -> None:
    """Wait until the element's attribute `name` is `value` (compared as text)."""
    page.wait_for_function(ATTRIBUTE_IS, arg=[selector, name, str(value)])


def submit(server: Server, spec: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = server.client.post("/v1/jobs", json=spec, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()
