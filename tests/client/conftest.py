"""One real `dropnet serve` per test module (API keys on, one training worker), and clients
for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.client import Client
from tests.e2e.conftest import Server, kill_server, launch_server

KEY = "key-alice"
OTHER_KEY = "key-bob"
SERVER_ENV = {"DROPNET_WORKERS": "1", "DROPNET_BLAS_THREADS": "1",
              "DROPNET_HEARTBEAT_SECONDS": "0.25", "DROPNET_POLL_SECONDS": "0.25",
              "DROPNET_API_KEYS": f"alice:{KEY},bob:{OTHER_KEY}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = launch_server(tmp_path_factory.mktemp("serve"), SERVER_ENV, ready=False)
    try:
        running.wait_ready()
        yield running
    finally:
        kill_server(running)


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url, api_key=KEY) as dropnet:
        yield dropnet
