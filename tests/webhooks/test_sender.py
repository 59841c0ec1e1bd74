"""The sender against a real receiver on loopback, on SQLite and PostgreSQL: signatures the
`standardwebhooks` package verifies, retries with one webhook-id, leases between senders, the
URL checked again at delivery time, bounded attempts."""

from __future__ import annotations

import json
import random
import time

import pytest
from standardwebhooks import Webhook

from service.config import Settings
from service.jobs.runner import JobRunner
from service.store import deliveries as delivery_rows
from service.store import jobs as job_rows
from service.store.models import WebhookDelivery
from service.store.session import Database
from service.store.statuses import DeliveryStatus
from service.webhooks import deliveries
from service.webhooks.sender import DeliverySender, backoff_seconds
from tests.factories import add_queued_job, spec
from tests.webhooks.receiver import HANG, Receiver

WORKER = job_rows.WorkerIdentity(id="w1", host="host-a", pid=101)


@pytest.fixture
def hook_settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, workers=0, heartbeat_seconds=0.2,
                    lease_seconds=5.0, poll_seconds=0.2, webhook_allowed_hosts="127.0.0.1",
                    webhook_backoff_seconds=0.05, webhook_backoff_max_seconds=0.2,
                    webhook_timeout_seconds=1.0, _env_file=None)


def finished_job(db: Database, settings: Settings, url: str,
                 events: list[str] | None = None, owner: str = "alice") -> str:
    """A job with `notify` trained to success by a JobRunner (its end writes the outbox)."""
    notify = {"url": url} if events is None else {"url": url, "events": events}
    with db.write() as session:
        job_id = add_queued_job(session, owner=owner,
                                spec_={**spec(iterations=20), "notify": notify}).id
    result = JobRunner(db, settings, WORKER).run(job_id)
    assert result is not None and result.status == "succeeded"
    return job_id


def send_until_settled(sender: DeliverySender, db: Database, timeout: float = 30.0) -> None:
    """Run sender passes until no delivery is pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sender.run_once()
        sender.wait_idle()
        with db.read() as session:
            if delivery_rows.count_pending(session) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("deliveries still pending")


def only_delivery(db: Database, job_id: str):
    with db.read() as session:
        [(delivery, attempts)] = deliveries.of_job(session, job_rows.get(session, job_id))
    return delivery, attempts


def owner_secret(db: Database, owner: str) -> str:
    with db.read() as session:
        secret = delivery_rows.secret_of(session, owner)
    assert secret is not None and secret.startswith("whsec_")
    return secret


def test_a_delivery_is_signed_as_standard_webhooks_says(db, hook_settings):
    with Receiver([200]) as receiver:
        job_id = finished_job(db, hook_settings, receiver.url)
        send_until_settled(DeliverySender(db, hook_settings), db)
        [request] = receiver.wait_for(1)
    payload = Webhook(owner_secret(db, "alice")).verify(request.body, request.headers)
    assert payload["type"] == "job.succeeded"
    assert payload["data"]["job_id"] == job_id and payload["data"]["status"] == "succeeded"
    assert payload["data"]["iteration"] == 20 and "test_accuracy" in payload["data"]["metrics"]
    delivery, [attempt] = only_delivery(db, job_id)
    assert request.headers["webhook-id"] == f"msg_{delivery.id}"
    assert delivery.status == DeliveryStatus.SUCCEEDED and attempt.status_code == 200
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY").verify(request.body,
                                                                      request.headers)


def test_the_setting_signs_for_owners_without_a_secret(db, hook_settings):
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    settings = hook_settings.model_copy(update={"webhook_secret": secret})
    with Receiver([200]) as receiver:
        finished_job(db, settings, receiver.url)
        send_until_settled(DeliverySender(db, settings), db)
        [request] = receiver.wait_for(1)
    assert Webhook(secret).verify(request.body, request.headers)["type"] == "job.succeeded"
    with db.read() as session:
        assert delivery_rows.secret_of(session, "alice") is None


def test_500_twice_then_200_is_three_attempts_and_one_success(db, hook_settings):
    with Receiver([500, 500, 200]) as receiver:
        job_id = finished_job(db, hook_settings, receiver.url)
        send_until_settled(DeliverySender(db, hook_settings), db)
        requests = receiver.wait_for(3)
        time.sleep(0.3)  # a fourth request would arrive now
        assert len(receiver.received) == 3
    secret = owner_secret(db, "alice")
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    assert len({r.body for r in requests}) == 1
    for request in requests:  # every attempt is signed afresh, with its own timestamp
        Webhook(secret).verify(request.body, request.headers)
    delivery, attempts = only_delivery(db, job_id)
    assert [a.status_code for a in attempts] == [500, 500, 200]
    assert [a.error for a in attempts] == ["HTTP 500", "HTTP 500", None]
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.next_attempt_at is None


def test_a_delivery_fails_after_the_configured_attempts(db, hook_settings):
    settings = hook_settings.model_copy(update={"webhook_max_attempts": 3})
    with Receiver([503]) as receiver:
        job_id = finished_job(db, settings, receiver.url)
        send_until_settled(DeliverySender(db, settings), db)
        time.sleep(0.3)
        assert len(receiver.received) == 3
    delivery, attempts = only_delivery(db, job_id)
    assert delivery.status == DeliveryStatus.FAILED and len(attempts) == 3
    assert delivery.next_attempt_at is None and delivery.delivered_at is None


def test_a_retry_waits_for_its_backoff(db, hook_settings):
    settings = hook_settings.model_copy(update={"webhook_backoff_seconds": 2.0,
                                                "webhook_backoff_max_seconds": 2.0})
    with Receiver([500, 200]) as receiver:
        job_id = finished_job(db, settings, receiver.url)
        sender = DeliverySender(db, settings)
        assert sender.run_once() == 1
        sender.wait_idle()
        assert sender.run_once() == 0  # not due yet: at least half of the 2 s delay is left
        delivery, _ = only_delivery(db, job_id)
        assert delivery.status == DeliveryStatus.PENDING and delivery.next_attempt_at
        send_until_settled(sender, db)
        first, second = receiver.wait_for(2)
    assert 1.0 <= second.at - first.at <= 4.0


def test_backoff_doubles_up_to_the_cap_with_jitter():
    settings = Settings(webhook_backoff_seconds=10, webhook_backoff_max_seconds=100,
                        _env_file=None)
    rng = random.Random(0)
    for attempt, delay in [(1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (9, 100)]:
        waits = [backoff_seconds(attempt, settings, rng) for _ in range(200)]
        assert delay / 2 <= min(waits) and max(waits) <= delay
        assert max(waits) - min(waits) > delay / 4  # jittered, not one fixed value


def test_two_senders_never_send_one_attempt_at_once(db, hook_settings, database_url):
    other_db = Database(database_url)  # as another process would
    try:
        with Receiver([HANG, 200]) as receiver:
            job_id = finished_job(db, hook_settings, receiver.url)
            first, second = DeliverySender(db, hook_settings), DeliverySender(other_db,
                                                                            hook_settings)
            assert first.run_once() == 1
            receiver.wait_for(1)
            assert second.run_once() == 0  # held under the first sender's lease
            receiver.released.set()
            first.wait_idle()  # closed without an answer: a failed attempt, retried
            send_until_settled(second, other_db)
            requests = receiver.wait_for(2)
    finally:
        other_db.dispose()
    assert len(requests) == 2 and len({r.headers["webhook-id"] for r in requests}) == 1
    delivery, attempts = only_delivery(db, job_id)
    assert delivery.status == DeliveryStatus.SUCCEEDED and len(attempts) == 2


def test_a_dead_senders_delivery_is_sent_by_another_after_its_lease(db, hook_settings):
    with Receiver([200]) as receiver:
        job_id = finished_job(db, hook_settings, receiver.url)
        with db.write() as session:  # a sender that claims, then dies before sending
            [dead] = delivery_rows.claim_due(
                session, lease_seconds=hook_settings.webhook_lease_seconds, limit=10)
        sender = DeliverySender(db, hook_settings)
        assert sender.run_once() == 0
        time.sleep(hook_settings.webhook_lease_seconds + 0.2)
        send_until_settled(sender, db)
        [request] = receiver.wait_for(1)
    assert request.headers["webhook-id"] == f"msg_{dead.delivery_id}"
    with db.write() as session:  # the dead sender's late result is fenced off
        assert not delivery_rows.record_attempt(session, dead, status_code=500, error="late",
                                                duration_seconds=1.0, retry_in_seconds=1.0,
                                                succeeded=False)
    delivery, attempts = only_delivery(db, job_id)
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert [(a.number, a.status_code, a.ended_at is None) for a in attempts] == [
        (1, None, True), (2, 200, False)]


def test_a_hanging_receiver_is_cut_off_at_the_timeout(db, hook_settings):
    with Receiver([HANG, 200]) as receiver:
        job_id = finished_job(db, hook_settings, receiver.url)
        send_until_settled(DeliverySender(db, hook_settings), db)
        receiver.wait_for(2)
    _, (hung, answered) = only_delivery(db, job_id)
    assert hung.error.startswith("TimeoutError") and hung.status_code is None
    assert 0.9 <= hung.duration_seconds < 1.9
    assert answered.status_code == 200


def test_a_host_resolving_to_loopback_at_delivery_time_is_refused(db, hook_settings):
    """The submission check is bypassed (the row is stored directly): the sender's own check
    refuses `localhost`, which the system resolver maps to a loopback address."""
    with Receiver([200]) as receiver:
        port = receiver.server.server_port
        job_id = finished_job(db, hook_settings, f"http://localhost:{port}/hooks")
        sender = DeliverySender(db, hook_settings)
        assert sender.run_once() == 1
        sender.wait_idle()
        assert receiver.received == []
    delivery, [attempt] = only_delivery(db, job_id)
    assert attempt.error.startswith("refused: 'localhost' resolves to ")
    assert attempt.error.endswith("a loopback address") and attempt.status_code is None
    assert delivery.status == DeliveryStatus.PENDING  # DNS may be fixed: retried later


def test_dns_rebinding_cannot_switch_the_checked_address(db, hook_settings):
    """The first lookup answers a public address, the second loopback: the check sees the
    second (each attempt resolves once), and the connection would go to what was checked."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    with Receiver([200]) as receiver:
        port = receiver.server.server_port
        job_id = finished_job(db, hook_settings, f"http://rebind.example:{port}/hooks")
        assert rebinding("rebind.example", port) == ["93.184.216.34"]  # "at submission"
        sender = DeliverySender(db, hook_settings, resolver=rebinding)
        sender.run_once()
        sender.wait_idle()
        assert receiver.received == []
    _, [attempt] = only_delivery(db, job_id)
    assert calls == ["rebind.example", "rebind.example"]
    assert attempt.error == "refused: 'rebind.example' resolves to 127.0.0.1, a loopback address"


def test_the_connection_goes_to_the_resolved_address_with_the_urls_host(db, hook_settings):
    settings = hook_settings.model_copy(update={"webhook_allowed_hosts": "hooks.internal"})
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    with Receiver([200]) as receiver:
        port = receiver.server.server_port
        finished_job(db, settings, f"http://hooks.internal:{port}/hooks?x=1")
        sender = DeliverySender(db, settings, resolver=resolver)
        sender.run_once()
        sender.wait_idle()
        [request] = receiver.wait_for(1)
    assert calls == ["hooks.internal"]
    assert request.headers["host"] == f"hooks.internal:{port}"


def test_only_the_events_asked_for_are_delivered(db, hook_settings):
    with Receiver([200]) as receiver:
        job_id = finished_job(db, hook_settings, receiver.url, events=["failed"])
    with db.read() as session:
        assert deliveries.of_job(session, job_rows.get(session, job_id)) == []


def test_the_delivery_body_is_the_stored_event(db, hook_settings):
    with Receiver([200]) as receiver:
        job_id = finished_job(db, hook_settings, receiver.url)
        send_until_settled(DeliverySender(db, hook_settings), db)
        [request] = receiver.wait_for(1)
    with db.read() as session:
        stored = session.get(WebhookDelivery, only_delivery(db, job_id)[0].id)
        assert stored is not None and request.body == stored.body.encode()
    assert json.loads(request.body)["data"]["finished_at"] is not None
