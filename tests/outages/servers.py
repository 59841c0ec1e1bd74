"""Private PostgreSQL and Redis servers that a test may stop and restart.

Real servers (the machine's own binaries), each on a free port with its data in the test's
temporary folder: restarting one disturbs no other test, and the machine's shared servers stay
up. PostgreSQL runs as the `postgres` system user when the tests run as root (initdb refuses
root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import free_port


def _pg_bin() -> Path | None:
    root = Path("/usr/lib/postgresql")
    versions = sorted(root.iterdir(), key=lambda p: p.name) if root.exists() else []
    for version in reversed(versions):
        if (version / "bin" / "pg_ctl").exists():
            return version / "bin"
    return None


def _require(name: str, found: bool) -> None:
    if found:
        return
    from tests.conftest import REQUIRE_SERVICES

    message = f"{name} binaries are not installed"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (DROPNET_TEST_REQUIRE_SERVICES=1)")
    pytest.skip(message)


class RedisServer:
    """redis-server without persistence (as the broker usually runs): a restart drops every
    message."""

    def __init__(self, folder: Path) -> None:
        _require("redis-server", shutil.which("redis-server") is not None)
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)], stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while not self.ping():
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def ping(self) -> bool:
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)
        self.process = None


class PostgresServer:
    """A PostgreSQL cluster of its own, with database `dropnet`."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        _require("PostgreSQL", self.bin is not None)
        # Not under pytest's folder: the postgres user cannot enter root's 0700 temp folders.
        self.folder = Path(tempfile.mkdtemp(prefix="dropnet-postgres-"))
        self.data = self.folder / "pgdata"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/dropnet"
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        assert self.bin is not None
        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.folder)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "postgres.log"),
                  "-w", "-t", "60", "-o",
                  f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories="
                  f"{self.folder} -c fsync=off", "start")

    def create_database(self) -> None:
        from sqlalchemy import create_engine, text

        admin = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres",
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text('CREATE DATABASE "dropnet"'))
        admin.dispose()

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "-o",
                  f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories="
                  f"{self.folder} -c fsync=off", "-l", str(self.folder / "postgres.log"),
                  "restart")

    def remove(self) -> None:
        """Stop the server if it runs and delete its files."""
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def running(self) -> bool:
        assert self.bin is not None
        result = subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p",
                                 str(self.port), "-q"], check=False)
        return result.returncode == 0
