"""The executor interface: how the API rings the doorbell for a job it has committed."""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol


class Executor(Protocol):
    """Delivers job ids to workers. The jobs table decides who runs what; a notification is only
    a doorbell, so losing or duplicating one never loses or duplicates a job."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def notify(self, job_id: str) -> None:
        """Called after the commit that queued `job_id`."""

    def health(self) -> dict[str, Any]:
        """{"ok": bool, ...} for /readyz."""


class NoExecutor:
    """Queues jobs without running them (an API-only process, e.g. workers=0 in tests)."""

    def __init__(self) -> None:
        self.notified: deque[str] = deque(maxlen=1024)
        """The latest job ids rung for (bounded: an API-only server runs for months)."""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def notify(self, job_id: str) -> None:
        self.notified.append(job_id)

    def health(self) -> dict[str, Any]:
        return {"ok": True, "executor": "none", "workers": 0}
