"""The API process's cache of loaded models: bounded by bytes, least recently used evicted."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from service.engine.network import Network


@dataclass
class CachedModel:
    job_id: str
    owner: str
    network: Network
    nbytes: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    """Networks reuse their buffers across calls: one prediction at a time per model."""


def model_bytes(network: Network) -> int:
    """The memory a loaded model holds: its weights plus inference buffers of similar size."""
    weights = sum(array.nbytes for array in network.parameters().values())
    return 2 * weights + 64 * 1024


class ModelCache:
    """job_id -> CachedModel, within `budget_bytes` (0 disables caching)."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[str, CachedModel] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, job_id: str) -> CachedModel | None:
        with self._lock:
            entry = self._entries.get(job_id)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(job_id)
            self.hits += 1
            return entry

    def put(self, entry: CachedModel) -> None:
        if entry.nbytes > self.budget_bytes:
            return
        with self._lock:
            old = self._entries.pop(entry.job_id, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._entries[entry.job_id] = entry
            self._bytes += entry.nbytes
            while self._bytes > self.budget_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.nbytes

    def discard(self, job_id: str) -> None:
        with self._lock:
            entry = self._entries.pop(job_id, None)
            if entry is not None:
                self._bytes -= entry.nbytes

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)
