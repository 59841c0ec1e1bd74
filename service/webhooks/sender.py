"""The sender: a background thread that claims due deliveries, sends them, and records each
attempt; failed attempts are retried with exponential backoff and jitter.

A claim takes a lease on the delivery (longer than any attempt may take), so two senders, in
one process or many, never send the same attempt at once, and a delivery whose sender died is
claimed again once that lease expires: at least once, with the same `webhook-id` every time.
No transaction stays open while a request is in flight.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from service import __version__
from service.config import Settings
from service.store import deliveries as delivery_rows
from service.store.deliveries import DeliveryClaim
from service.store.session import Database

from . import transport, urls
from .outbox import message_id
from .owner_secrets import signing_secret
from .signatures import signed_headers

log = logging.getLogger(__name__)

USER_AGENT = f"dropnet-webhooks/{__version__}"
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class AttemptResult:
    """How one attempt went: the status code (None when no answer came) or the error."""

    status_code: int | None
    error: str | None
    duration_seconds: float

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def backoff_seconds(attempt: int, settings: Settings, rng: random.Random) -> float:
    """The wait after failed attempt number `attempt` (1, 2, ...): base x 2^(attempt-1),
    capped, of which a random half is dropped ("equal jitter"), so that retries of many
    deliveries to one receiver spread out."""
    delay = min(settings.webhook_backoff_max_seconds,
                settings.webhook_backoff_seconds * 2.0 ** (attempt - 1))
    return delay / 2 + rng.uniform(0, delay / 2)


class DeliverySender:
    """Sends due deliveries, at most `settings.webhook_concurrency` at once."""

    def __init__(self, db: Database, settings: Settings, *,
                 resolver: urls.Resolver = urls.system_resolver,
                 rng: random.Random | None = None) -> None:
        self.db = db
        self.settings = settings
        self.resolver = resolver
        self.rng = rng or random.Random()
        self._pool = ThreadPoolExecutor(settings.webhook_concurrency,
                                        thread_name_prefix="webhook")
        self._in_flight: set[Future[None]] = set()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop claiming; attempts in flight get `timeout` seconds (an unfinished one is sent
        again by whichever sender claims it after its lease)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run_once(self) -> int:
        """Claim as many due deliveries as there are free sending slots and start sending
        them; how many were claimed."""
        self._in_flight = {future for future in self._in_flight if not future.done()}
        free = self.settings.webhook_concurrency - len(self._in_flight)
        if free <= 0:
            return 0
        with self.db.read() as session:
            if not delivery_rows.any_due(session):
                return 0
        with self.db.write() as session:
            claims = delivery_rows.claim_due(
                session, lease_seconds=self.settings.webhook_lease_seconds, limit=free)
            secrets = {owner: signing_secret(session, owner, self.settings)
                       for owner in {claim.owner for claim in claims}}
        for claim in claims:
            self._in_flight.add(self._pool.submit(self.deliver, claim, secrets[claim.owner]))
        return len(claims)

    def wait_idle(self) -> None:
        """Wait until every attempt started so far has been recorded."""
        for future in list(self._in_flight):
            future.result()

    def deliver(self, claim: DeliveryClaim, secret: str) -> None:
        """Send one attempt of `claim` and record how it went."""
        result = self.attempt(claim, secret)
        retry_in = None
        if not result.succeeded and claim.attempt < self.settings.webhook_max_attempts:
            retry_in = backoff_seconds(claim.attempt, self.settings, self.rng)
        with self.db.write() as session:
            kept = delivery_rows.record_attempt(
                session, claim, status_code=result.status_code, error=result.error,
                duration_seconds=result.duration_seconds, retry_in_seconds=retry_in,
                succeeded=result.succeeded)
        if not kept:
            log.warning("webhook %s attempt %d: lease lost before its result was stored; "
                        "another sender retries it", claim.delivery_id, claim.attempt)
        elif not result.succeeded:
            log.warning("webhook %s attempt %d to %s failed (%s); %s", claim.delivery_id,
                        claim.attempt, claim.url, result.error or result.status_code,
                        f"retry in {retry_in:.1f} s" if retry_in is not None else "giving up")

    def attempt(self, claim: DeliveryClaim, secret: str) -> AttemptResult:
        """Check the URL again (DNS may have changed), then POST the signed body."""
        started = time.monotonic()
        body = claim.body.encode()
        headers = {**signed_headers(secret, message_id(claim.delivery_id), int(time.time()),
                                    body), "User-Agent": USER_AGENT}
        try:
            target = urls.parse(claim.url)
            address = urls.checked_addresses(target, self.settings, self.resolver)[0]
            answer = transport.post(target, address, body, headers,
                                    timeout=self.settings.webhook_timeout_seconds,
                                    max_response_bytes=self.settings.webhook_max_response_bytes)
        except urls.UnsafeURL as refused:
            return AttemptResult(None, f"refused: {refused.reason}"[:MAX_ERROR_CHARS],
                                 time.monotonic() - started)
        except OSError as failure:
            return AttemptResult(None, f"{type(failure).__name__}: {failure}"[:MAX_ERROR_CHARS],
                                 time.monotonic() - started)
        unsuccessful = None if 200 <= answer.status_code < 300 else f"HTTP {answer.status_code}"
        return AttemptResult(answer.status_code, unsuccessful, time.monotonic() - started)

    def _run(self) -> None:
        while not self._stopping.wait(self.settings.webhook_poll_seconds):
            try:
                while self.run_once() and not self._stopping.is_set():
                    pass
            except Exception:
                log.exception("webhook sender pass failed; retrying")
