"""podman-compose brings up docker-compose.yml's default profile (the `api` service, SQLite in
the `dropnet-data` volume) and the API becomes healthy. The `scale` profile's postgres and redis
images cannot be pulled here: test_scale.py runs what its migrate and worker services run
against this machine's PostgreSQL and Redis instead."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.container.conftest import ROOT, podman, unique
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.container

PODMAN_COMPOSE = Path(sys.executable).parent / "podman-compose"
# podman-compose passes no global options to podman: the runtime and the rlimits this machine
# needs come from a containers.conf of the test's own (CONTAINERS_CONF replaces the system's).
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
"""


@pytest.fixture
def compose(image: str, tmp_path: Path) -> Iterator[tuple[list[str], dict[str, str], int]]:
    """The podman-compose command for this project, its environment and the API's port; the
    project's containers, pod and volume are removed afterwards."""
    if not PODMAN_COMPOSE.exists():
        pytest.fail(f"podman-compose is not installed at {PODMAN_COMPOSE} (the dev extra has it)")
    conf = tmp_path / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    port = free_port()
    env = {**os.environ, "CONTAINERS_CONF": str(conf), "DROPNET_TEST_IMAGE": image,
           "DROPNET_TEST_PORT": str(port)}
    project = unique("compose").replace("-", "_")
    command = [str(PODMAN_COMPOSE), "--project-name", project,
               "--file", str(ROOT / "docker-compose.yml"),
               "--file", str(ROOT / "tests" / "container" / "compose.host.yml")]
    yield command, env, port
    subprocess.run([*command, "down", "--volumes", "--timeout", "10"], env=env,
                   capture_output=True, timeout=120)
    podman("volume", "rm", "--force", f"{project}_dropnet-data", check=False)


def test_the_default_profile_comes_up_healthy(compose):
    command, env, port = compose
    up = subprocess.run([*command, "up", "--detach", "--no-build"], env=env,
                        capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    listed = subprocess.run([*command, "ps", "--format", "json"], env=env,
                            capture_output=True, text=True, timeout=60)
    containers = json.loads(listed.stdout)
    assert [c["Labels"]["com.docker.compose.service"] for c in containers] == ["api"]
    name = containers[0]["Names"][0]

    # No systemd schedules podman's health checks here: run the image's HEALTHCHECK until it
    # passes (start period 30 s, then 3 retries), then the container must report healthy.
    deadline = time.monotonic() + 90
    while podman("healthcheck", "run", name, check=False).returncode != 0:
        assert time.monotonic() < deadline, podman("logs", name, check=False).stderr[-3000:]
        time.sleep(1)
    health = podman("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()
    assert health == "healthy"
    ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    mounts = json.loads(podman("inspect", "--format", "{{json .Mounts}}", name).stdout)
    assert [(m["Name"].rsplit("_", 1)[-1], m["Destination"]) for m in mounts] == [
        ("dropnet-data", "/data")]
