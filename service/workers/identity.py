"""A worker's identity. Its row in the workers table is written by service/store/workers.py;
the worker modules reach those functions through here."""

from __future__ import annotations

import os
import socket
import uuid

from service.store.jobs import WorkerIdentity
from service.store.workers import forget, forget_silent, seen_since, touch

__all__ = ["WorkerIdentity", "forget", "forget_silent", "seen_since", "this_worker", "touch"]


def this_worker() -> WorkerIdentity:
    """This process: its host name, pid and a worker id unique across restarts."""
    host, pid = socket.gethostname(), os.getpid()
    return WorkerIdentity(id=f"{host}:{pid}:{uuid.uuid4().hex[:8]}", host=host, pid=pid)
