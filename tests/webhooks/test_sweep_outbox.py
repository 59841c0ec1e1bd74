"""A sweep's delivery is written by the transaction that ends its last run, exactly once: also
when two runs end at the same moment in two PostgreSQL transactions, each of which (under READ
COMMITTED) cannot see the other's uncommitted end while it counts the runs."""

from __future__ import annotations

import json
import threading

from service.store import jobs as job_rows
from service.store import sweeps as sweep_rows
from service.store.models import WebhookDelivery
from service.store.session import Database
from service.webhooks import outbox
from tests.factories import TEST_WORKER, add_queued_job, spec

URL = "https://hooks.example.com/dropnet"


def claimed_sweep(db: Database, runs: int, notify: dict[str, object] | None
                  ) -> tuple[str, list[job_rows.Claim]]:
    """A sweep of alice's with `runs` runs, each claimed by the test worker."""
    sweep_spec = {"name": "s", "parameters": {"training.seed": [1, 2]}, "notify": notify}
    with db.write() as session:
        sweep = sweep_rows.add(session, sweep_id="5" * 32, owner="alice", name="s",
                               spec=sweep_spec, run_parameters={}, max_concurrent=None)
        for _ in range(runs):
            add_queued_job(session, owner="alice", spec_=spec(iterations=20)).sweep_id = sweep.id
    claims = []
    for _ in range(runs):
        with db.write() as session:
            claim = job_rows.claim(session, TEST_WORKER, lease_seconds=30)
            assert claim is not None
            claims.append(claim)
    return sweep.id, claims


def sweep_deliveries(db: Database) -> list[WebhookDelivery]:
    with db.read() as session:
        return list(session.query(WebhookDelivery).filter(WebhookDelivery.sweep_id.isnot(None)))


def end(db: Database, claim: job_rows.Claim, status: job_rows.JobStatus,
        ended: threading.Barrier | None = None) -> None:
    """End the claimed run as the runner does; with `ended`, wait after the status change
    until the other transaction has made its own, before the outbox counts the runs."""
    with db.write() as session:
        assert job_rows.finish(session, claim, status=status, iteration=20)
        if ended is not None:
            ended.wait(timeout=10)
        outbox.record_job_ends(session, [claim.job_id])


def test_two_runs_ending_at_once_write_the_sweeps_delivery_once(postgres_db: Database) -> None:
    sweep_id, claims = claimed_sweep(postgres_db, 2, {"url": URL, "events": ["succeeded"]})
    ended = threading.Barrier(2)
    failures: list[BaseException] = []

    def run_end(claim: job_rows.Claim) -> None:
        try:
            end(postgres_db, claim, job_rows.SUCCEEDED, ended)
        except BaseException as error:  # reported below, in the test's thread
            failures.append(error)

    threads = [threading.Thread(target=run_end, args=(claim,)) for claim in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    [delivery] = sweep_deliveries(postgres_db)
    body = json.loads(delivery.body)
    assert (delivery.sweep_id, delivery.job_id, delivery.event_type) == (
        sweep_id, None, "sweep.succeeded")
    assert body["data"]["counts"] == {"succeeded": 2}


def test_only_the_last_run_writes_it_and_with_the_sweeps_status(db: Database) -> None:
    sweep_id, (first, second) = claimed_sweep(db, 2, {"url": URL,
                                                      "events": ["succeeded", "failed"]})
    end(db, first, job_rows.SUCCEEDED)
    assert sweep_deliveries(db) == []
    end(db, second, job_rows.FAILED)
    [delivery] = sweep_deliveries(db)
    assert (delivery.sweep_id, delivery.event_type, delivery.owner) == (
        sweep_id, "sweep.failed", "alice")
    assert json.loads(delivery.body)["data"]["counts"] == {"succeeded": 1, "failed": 1}


def test_a_sweep_without_notify_writes_nothing(db: Database) -> None:
    _, claims = claimed_sweep(db, 2, None)
    for claim in claims:
        end(db, claim, job_rows.SUCCEEDED)
    assert sweep_deliveries(db) == []
