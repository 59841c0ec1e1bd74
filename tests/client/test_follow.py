"""follow() against the real event streams of a real `dropnet serve`: typed events in order,
every metric point exactly once across dropped connections, resumed with Last-Event-ID."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from service.client import (
    AsyncClient,
    Client,
    DropnetError,
    EndEvent,
    MetricsEvent,
    RunEvent,
    StatusEvent,
    SweepEndEvent,
)
from tests.client.conftest import KEY, OTHER_KEY, SERVER_ENV
from tests.client.proxy import CuttingProxy
from tests.conftest import drop_postgres, fresh_postgres
from tests.e2e.conftest import Server, free_port, kill_server, launch_server
from tests.factories import spec


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, server: Server,
            tmp_path: Path) -> Iterator[Server]:
    """The module's SQLite server (streams poll the database), or one on a fresh PostgreSQL
    database (streams are notified)."""
    if request.param == "sqlite":
        yield server
        return
    url, name = fresh_postgres(request.getfixturevalue("postgres_template"))
    on_postgres = launch_server(tmp_path, {**SERVER_ENV, "DROPNET_DATABASE_URL": url})
    try:
        yield on_postgres
    finally:
        kill_server(on_postgres)
        drop_postgres(name)


@pytest.fixture
def proxy(backend: Server) -> Iterator[CuttingProxy]:
    cutting = CuttingProxy(urlsplit(backend.url).port or 80)
    yield cutting
    cutting.close()


def test_follow_yields_the_job_from_queued_to_end(client: Client) -> None:
    job = client.submit(spec(iterations=200, eval_every=50))
    events = list(client.follow(job.id))
    assert isinstance(events[0], StatusEvent) and events[0].status in ("queued", "running")
    end = events[-1]
    assert isinstance(end, EndEvent) and end.status == "succeeded" and end.attempts == 1
    assert [e.status for e in events if isinstance(e, StatusEvent)][-1] == "succeeded"
    assert all(e.id for e in events)
    points = [p for e in events if isinstance(e, MetricsEvent) for p in e.points]
    assert sorted(p.step for p in points if p.key == "batch_loss") == list(range(1, 201))
    assert end.metrics["test_accuracy"] == client.get(job.id).metrics["test_accuracy"]
    # Resuming after the end event: nothing follows.
    assert list(client.follow(job.id, last_event_id=end.id)) == []


def test_every_point_arrives_once_across_cut_connections(backend: Server,
                                                         proxy: CuttingProxy) -> None:
    steps: Counter[tuple[str, int]] = Counter()
    cuts_while_running = 0
    cuts = 0
    with Client(backend.url, api_key=KEY) as client, \
            Client(proxy.url, api_key=KEY, reconnect_seconds=0.05) as through_proxy:
        job = client.submit(spec(iterations=20000, eval_every=2000))
        for event in through_proxy.follow(job.id):
            if isinstance(event, MetricsEvent):
                steps.update((p.key, p.step) for p in event.points)
                # Three cuts, each on a connection of its own (events already buffered from a
                # cut connection arrive before the client reconnects).
                if cuts < 3 and proxy.accepted == cuts + 1:
                    cuts_while_running += client.get(job.id).status == "running"
                    proxy.cut()  # mid-stream: the client reconnects with Last-Event-ID
                    cuts += 1
            last = event
        histories = {key: [p.step for p in client.history(job.id, key).points]
                     for key in ("batch_loss", "test_accuracy", "train_loss")}
    assert isinstance(last, EndEvent) and last.status == "succeeded"
    assert proxy.accepted >= 4, proxy.accepted  # the first connection and three resumptions
    assert cuts_while_running >= 1  # at least one cut landed while the job trained
    assert [n for n in steps.values() if n != 1] == []  # no duplicate
    assert len(histories["batch_loss"]) == 20000  # no gap
    for key, stored in histories.items():
        assert sorted(s for k, s in steps if k == key) == stored, key


def test_follow_errors_before_the_stream_are_dropnet_errors(server: Server,
                                                            client: Client) -> None:
    job = client.submit(spec(iterations=20, eval_every=10))
    with Client(server.url, api_key=OTHER_KEY) as bob, pytest.raises(DropnetError) as hidden:
        next(bob.follow(job.id))
    assert hidden.value.status == 404
    with pytest.raises(DropnetError) as invalid:
        next(client.follow(job.id, last_event_id="not-an-id"))
    assert invalid.value.status == 422


def test_follow_sweep_reports_each_run_then_the_end(client: Client) -> None:
    created = client.sweep({"name": "followed", "base": spec(iterations=30, eval_every=10),
                            "parameters": {"training.seed": [1, 2]}})
    events = list(client.follow_sweep(created.id))
    end = events[-1]
    assert isinstance(end, SweepEndEvent) and end.counts == {"succeeded": 2}
    finals = {e.job_id: e.final for e in events
              if isinstance(e, RunEvent) and e.status == "succeeded"}
    assert len(finals) == 2 and all(final and final["test_accuracy"] is not None
                                    for final in finals.values())


def test_async_client_follows_and_waits(server: Server) -> None:
    async def scenario() -> tuple[list[object], str]:
        async with AsyncClient(server.url, api_key=KEY) as dropnet:
            job = await dropnet.submit(spec(iterations=100, eval_every=50))
            events = [event async for event in dropnet.follow(job.id)]
            done = await dropnet.wait(job.id, timeout=30)
            series = await dropnet.history(job.id, "batch_loss", page_size=30)
            assert [p.step for p in series.points] == list(range(1, 101))
            return events, done.status

    events, status = asyncio.run(scenario())
    assert status == "succeeded"
    assert isinstance(events[-1], EndEvent) and events[-1].status == "succeeded"
    assert sum(len(e.points) for e in events if isinstance(e, MetricsEvent)
               and e.points) >= 100


def test_follow_gives_up_after_max_reconnects_without_an_event() -> None:
    with Client(f"http://127.0.0.1:{free_port()}", max_reconnects=2,
                reconnect_seconds=0.01) as nowhere, pytest.raises(DropnetError) as lost:
        next(nowhere.follow("0" * 32))
    assert lost.value.code == "stream_lost" and lost.value.status is None
    assert "gave up after 2 reconnections" in lost.value.message


def test_since_now_skips_the_backlog(client: Client) -> None:
    job = client.submit(spec(iterations=200_000, eval_every=10_000))
    while (running := client.get(job.id)).progress.iteration < 500:
        assert not running.finished, running
        time.sleep(0.05)
    try:
        stream = client.follow(job.id, since_now=True)
        first = next(e for e in stream if isinstance(e, MetricsEvent) and e.points)
        assert min(p.step for p in first.points) > 500  # not from the first step
    finally:
        client.cancel(job.id)
    assert client.wait(job.id, timeout=60, poll_seconds=0.1).status == "cancelled"
