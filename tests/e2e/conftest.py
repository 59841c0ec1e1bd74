"""Real processes: `dropnet serve` and `dropnet worker` started exactly as the Dockerfile and
docker-compose.yml start them (the console script), talking over real HTTP."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from service.client import Client

DROPNET = str(Path(sys.executable).parent / "dropnet")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A running `dropnet serve` subprocess, a raw HTTP client for it (`client`) and the
    dropnet client (`api`)."""

    def __init__(self, process: subprocess.Popen, port: int, log: Path) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.client = httpx.Client(base_url=self.url, timeout=30)
        self.api = Client(self.url, timeout=30)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited:\n{self.log.read_text()[-4000:]}")
            try:
                if self.client.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready:\n{self.log.read_text()[-4000:]}")

    def alive(self) -> bool:
        """Whether the server answers /healthz (up, whether or not it is ready)."""
        try:
            return self.client.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def wait_job(self, job_id: str, statuses=("succeeded", "failed", "cancelled"),
                 timeout: float = 300.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.client.get(f"/v1/jobs/{job_id}").json()
            if job["status"] in statuses:
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} still {job['status']}:\n"
                             f"{self.log.read_text()[-4000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        self.close_clients()
        return terminate(self.process, sig, timeout)

    def close_clients(self) -> None:
        self.client.close()
        self.api.close()


def terminate(process: subprocess.Popen, sig: int, timeout: float) -> int:
    """Send `sig`, wait up to `timeout`, then kill the whole process group; the exit code."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = log.open("ab")
    return subprocess.Popen([DROPNET, *args], env={**os.environ, **env}, stdout=handle,
                            stderr=subprocess.STDOUT, start_new_session=True)


def children(pid: int) -> list[int]:
    """The process ids of `pid`'s children (Linux)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


class Worker:
    """A running `dropnet worker` subprocess (the parent of its Celery consumers)."""

    def __init__(self, process: subprocess.Popen, log: Path) -> None:
        self.process = process
        self.log = log

    def consumer_pids(self) -> list[int]:
        return children(self.process.pid)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        return terminate(self.process, sig, timeout)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """workers(env, concurrency=1) starts `dropnet worker --concurrency N`."""
    started: list[Worker] = []

    def launch(env: dict[str, str], concurrency: int = 1) -> Worker:
        log = tmp_path / f"worker-{len(started)}.log"
        worker = Worker(start(["worker", "--concurrency", str(concurrency)], env, log), log)
        started.append(worker)
        return worker

    yield launch
    for worker in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait()


@pytest.fixture
def scale_env(postgres_template: str) -> Iterator[dict[str, str]]:
    """Environment for a scaled-out service: a fresh PostgreSQL database, Redis as broker."""
    from tests.conftest import REDIS_URL, drop_postgres, fresh_postgres, require_service

    require_service("Redis", REDIS_URL, 6379)
    import redis

    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    url, name = fresh_postgres(postgres_template)
    yield {"DROPNET_DATABASE_URL": url, "DROPNET_BROKER_URL": REDIS_URL,
           "DROPNET_EXECUTOR": "celery", "DROPNET_WORKERS": "0",
           "DROPNET_HEARTBEAT_SECONDS": "0.5", "DROPNET_POLL_SECONDS": "0.5",
           "DROPNET_BLAS_THREADS": "1"}
    broker.flushdb()
    broker.close()
    drop_postgres(name)


def launch_server(directory: Path, env: dict[str, str] | None = None,
                  args: list[str] | None = None, ready: bool = True) -> Server:
    """`dropnet serve` on a free port with its SQLite database and log in `directory`."""
    port = free_port()
    log = directory / f"serve-{port}.log"
    full_env = {"DROPNET_DATABASE_URL": f"sqlite:///{directory / 'dropnet.db'}",
                "DROPNET_PORT": str(port), "DROPNET_HOST": "127.0.0.1", **(env or {})}
    server = Server(start(["serve", *(args or [])], full_env, log), port, log)
    if ready:
        server.wait_ready()
    return server


def kill_server(server: Server) -> None:
    """Kill the whole process group: no worker outlives its test."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait()
    server.close_clients()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """serve(env={...}, args=[...]) starts `dropnet serve` on a free port and waits for it."""
    servers: list[Server] = []

    def launch(env: dict[str, str] | None = None, args: list[str] | None = None,
               ready: bool = True) -> Server:
        # Appended before it is ready: a server that never gets ready is still killed.
        servers.append(server := launch_server(tmp_path, env, args, ready=False))
        if ready:
            server.wait_ready()
        return server

    yield launch
    for server in servers:
        kill_server(server)
