"""The image, built from a clean export of HEAD by .ci/container.sh, and containers run from it
with podman the way this machine allows (runc, explicit rlimits, the host's network).

Run with `.ci/container.sh test` (or `.venv/bin/pytest -m container tests/container` once
`.ci/container.sh setup` has run): the main test command leaves these tests out
(`-m "not container"` in pyproject.toml's addopts). Without podman they skip with the reason,
unless DROPNET_TEST_REQUIRE_SERVICES=1 (set by .ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.e2e.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".ci" / "container.sh"
IMAGE = "localhost/dropnet:ci"
UID = 10001
# What the sandbox needs (see .ci/container.sh): runc instead of crun, rlimits it accepts, and
# the host's network namespace.
PODMAN = ["podman", "--runtime", "runc"]
RUN_OPTIONS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
               "--network", "host"]


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `podman --runtime runc ARGS`; its stdout and stderr as text."""
    result = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {result.returncode}:\n"
                             f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result


def unique(prefix: str) -> str:
    return f"dropnet-test-{prefix}-{uuid.uuid4().hex[:8]}"


def walkthrough_spec(**training: Any) -> dict[str, Any]:
    """The job the README's walkthrough submits, with `training` fields replaced."""
    section = (ROOT / "README.md").read_text().split("## Walkthrough with curl", 1)[1]
    spec = json.loads(re.search(r"-d '(\{.*?\})'", section, re.S).group(1))
    spec["training"].update(training)
    return spec


def walkthrough_inputs() -> list[list[float]]:
    """The `inputs` of the README's predict example: one 8x8 digit, (1, 64)."""
    section = (ROOT / "README.md").read_text().split("## Walkthrough with curl", 1)[1]
    predict = re.search(r"/predict .*?-d '(\{.*?\})'", section, re.S).group(1)
    return json.loads(predict)["inputs"]


class Container:
    """A detached container of the image running `dropnet serve` (or `command`), on a free
    port of the host's network, and an HTTP client for it."""

    def __init__(self, name: str, env: dict[str, str], volume: str | None = None,
                 command: list[str] | None = None, hostname: str | None = None) -> None:
        self.name = name
        self.port = free_port()
        options = [*RUN_OPTIONS, "--detach", "--name", name,
                   "--env", "DROPNET_HOST=127.0.0.1", "--env", f"DROPNET_PORT={self.port}"]
        for key, value in env.items():
            options += ["--env", f"{key}={value}"]
        if volume is not None:
            options += ["--volume", f"{volume}:/data"]
        if hostname is not None:
            options += ["--hostname", hostname]
        podman("run", *options, IMAGE, *(command or []))
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return (result.stdout + result.stderr)[-4000:]

    def state(self) -> dict[str, Any]:
        return json.loads(podman("inspect", "--format", "{{json .State}}", self.name).stdout)

    def exec(self, *command: str) -> subprocess.CompletedProcess:
        return podman("exec", self.name, *command, check=False)

    def wait_ready(self, timeout: float = 90) -> dict[str, Any]:
        """Poll /readyz until it answers 200; its body."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.state()["Running"]:
                raise AssertionError(f"{self.name} exited:\n{self.logs()}")
            try:
                response = self.client.get("/readyz")
                if response.status_code == 200:
                    return response.json()
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise AssertionError(f"{self.name} not ready after {timeout} s:\n{self.logs()}")

    def wait_job(self, job_id: str, until: Callable[[dict[str, Any]], bool] | None = None,
                 timeout: float = 240) -> dict[str, Any]:
        """Poll the job until `until(job)` (default: a terminal status); the job."""
        done = until or (lambda job: job["status"] in ("succeeded", "failed", "cancelled"))
        deadline = time.monotonic() + timeout
        job: dict[str, Any] = {}
        while time.monotonic() < deadline:
            job = self.client.get(f"/v1/jobs/{job_id}").json()
            if done(job):
                return job
            time.sleep(0.25)
        raise AssertionError(f"job {job_id} still {job.get('status')} after {timeout} s:\n"
                             f"{self.logs()}")

    def remove(self) -> None:
        self.client.close()
        podman("rm", "--force", "--volumes", "--time", "5", self.name, check=False)


@pytest.fixture(scope="session")
def image() -> str:
    """The image, built by `.ci/container.sh build` from a clean export of HEAD."""
    if shutil.which("podman") is None:
        message = "podman is not installed (.ci/container.sh setup installs it)"
        if REQUIRE_SERVICES:
            pytest.fail(message + " (DROPNET_TEST_REQUIRE_SERVICES=1)")
        pytest.skip(message)
    result = subprocess.run([str(SCRIPT), "build", IMAGE], capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, f"the image did not build:\n{result.stderr[-6000:]}"
    return IMAGE


@pytest.fixture
def containers(image: str) -> Iterator[Callable[..., Container]]:
    """Start containers of the image (arguments of `Container`, without the name); all are
    removed afterwards."""
    started: list[Container] = []

    def start(**kwargs: Any) -> Container:
        container = Container(unique("run"), **kwargs)
        started.append(container)
        return container

    yield start
    for container in started:
        container.remove()


@pytest.fixture
def volume(image: str) -> Iterator[str]:
    """A fresh named volume for /data, removed afterwards."""
    name = unique("data")
    podman("volume", "create", name)
    yield name
    podman("volume", "rm", "--force", name, check=False)
