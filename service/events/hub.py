"""EventHub: the one fan-out of an API process.

Streams subscribe to job ids. While any subscription exists, a single task waits for the
change source (PostgreSQL LISTEN, or a primary-key poll on SQLite) to name followed jobs that
changed, reads each such change once (`reading.read_change`, in a worker thread) and offers
it to every subscription following that job. With no subscription left the task ends and its
LISTEN connection closes: a process without streams holds nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import anyio.to_thread

from service.config import Settings
from service.errors import TooManyStreams
from service.store.session import Database

from .reading import JobChange, Position, heads, read_change
from .sources import ChangeSource, NotifiedChanges, PolledChanges

log = logging.getLogger(__name__)

QUEUE_CAPACITY = 64
"""Changes a subscription holds for a slow client; past it the client re-reads from the
database where it is (the subscription is marked overflowed), so the hub never waits."""

RETRY_SECONDS = 1.0
"""Wait before the hub reconnects its change source after a failure (a database restart)."""


class Subscription:
    """A stream's share of the hub: the changes of `job_ids`, in the order they were read."""

    def __init__(self, job_ids: frozenset[str], *, points: bool) -> None:
        self.job_ids = job_ids
        self.points = points
        self.overflowed = False
        self._queue: asyncio.Queue[JobChange] = asyncio.Queue(QUEUE_CAPACITY)

    def offer(self, change: JobChange) -> None:
        if self._queue.full():
            while not self._queue.empty():
                self._queue.get_nowait()
            self.overflowed = True
        self._queue.put_nowait(change)

    async def next(self) -> JobChange:
        return await self._queue.get()


class EventHub:
    """Per-process registry of subscriptions and the task that feeds them."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._subscriptions: set[Subscription] = set()
        self._positions: dict[str, Position] = {}  # how far the hub has read each job
        self._with_points: set[str] = set()         # jobs whose points the hub reads
        self._dirty: set[str] = set()                # jobs to read at the next pass
        self._task: asyncio.Task[None] | None = None

    @property
    def streams(self) -> int:
        """Subscriptions open now."""
        return len(self._subscriptions)

    def check_capacity(self) -> None:
        """TooManyStreams (503) when this process already serves events_max_streams."""
        limit = self.settings.events_max_streams
        if len(self._subscriptions) >= limit:
            raise TooManyStreams(
                f"this API process already serves {limit} event streams "
                f"(DROPNET_EVENTS_MAX_STREAMS); retry later or on another process",
                headers={"Retry-After": "5"})

    @contextlib.asynccontextmanager
    async def subscribe(self, job_ids: list[str], *, points: bool
                        ) -> AsyncIterator[Subscription]:
        """Follow `job_ids` (with their metric points when `points`) until the block ends."""
        self.check_capacity()
        subscription = Subscription(frozenset(job_ids), points=points)
        self._subscriptions.add(subscription)
        try:
            await self._watch(subscription)
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._run(), name="dropnet-event-hub")
            yield subscription
        finally:
            self._subscriptions.discard(subscription)
            self._forget_unwatched()

    async def close(self) -> None:
        """Stop the hub's task (application shutdown)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch(self, subscription: Subscription) -> None:
        """Start reading the subscription's jobs from where they are now, and read each once
        more at the next pass: a change committed while this ran is not missed."""
        new = [job_id for job_id in subscription.job_ids if job_id not in self._positions
               or (subscription.points and job_id not in self._with_points)]
        if not new:
            return
        found = await anyio.to_thread.run_sync(self._heads, new, subscription.points)
        for job_id, head in found.items():
            if job_id not in self._positions or job_id not in self._with_points:
                self._positions[job_id] = head
        if subscription.points:
            self._with_points.update(new)
        self._dirty.update(new)

    def _heads(self, job_ids: list[str], points: bool) -> dict[str, Position]:
        with self.db.read() as session:
            return heads(session, job_ids, points=points)

    def _forget_unwatched(self) -> None:
        watched = self._watched()
        for job_id in set(self._positions) - watched:
            del self._positions[job_id]
        self._with_points &= {job_id for s in self._subscriptions if s.points
                              for job_id in s.job_ids}
        self._dirty &= watched
        if not self._subscriptions and self._task is not None:
            self._task.cancel()
            self._task = None

    def _watched(self) -> set[str]:
        return {job_id for subscription in self._subscriptions for job_id in subscription.job_ids}

    def _source(self) -> ChangeSource:
        interval = self.settings.events_poll_seconds
        if self.db.is_sqlite:
            return PolledChanges(self.db, interval)
        return NotifiedChanges(self.db.url, interval)

    async def _run(self) -> None:
        """The fan-out: wait for changes, read each changed job once, offer it to its
        subscriptions; reconnect the source after a failure."""
        while self._subscriptions:
            try:
                async with self._source() as source:
                    while self._subscriptions:
                        changed = await source.changed(self._watched()) | self._dirty
                        self._dirty = set()
                        await self._publish(changed & self._watched())
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database went away: streams wait, then resync
                log.warning("event hub: change source failed (%s: %s); retrying in %.0f s",
                            type(error).__name__, str(error).splitlines()[0] if str(error)
                            else "", RETRY_SECONDS)
                self._dirty |= self._watched()
                await anyio.sleep(RETRY_SECONDS)

    async def _publish(self, job_ids: set[str]) -> None:
        if not job_ids:
            return
        wanted = {job_id: (self._positions.get(job_id, Position()),
                           job_id in self._with_points) for job_id in job_ids}
        changes = await anyio.to_thread.run_sync(self._read, wanted)
        for change in changes:
            if change.job_id not in self._positions:
                continue  # nobody follows it any more
            self._positions[change.job_id] = change.position
            if not change.complete:
                self._dirty.add(change.job_id)  # the rest at the next pass
            for subscription in self._subscriptions:
                if change.job_id in subscription.job_ids:
                    subscription.offer(change)

    def _read(self, wanted: dict[str, tuple[Position, bool]]) -> list[JobChange]:
        limit = self.settings.events_max_points_per_event
        with self.db.read() as session:
            return [read_change(session, job_id, after, points=points, max_points=limit)
                    for job_id, (after, points) in sorted(wanted.items())]
