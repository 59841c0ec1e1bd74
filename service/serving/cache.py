"""The API process's cache of loaded models: bounded by bytes, least recently used evicted."""

from __future__ import annotations

import math
import threading
import time
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
    checked_at: float = field(default_factory=time.monotonic)
    """When the database last confirmed the job and its model exist (time.monotonic())."""
    class_names: list[str] | None = None
    """Each class's name by index, from the model file, when the training data named them."""


PREDICT_ROWS = 64
"""Rows per forward pass of a cached model: larger batches are predicted in chunks."""

BUFFERED_SHAPES = 4
"""Batch shapes whose buffers an engine layer keeps (its BufferPool's per-name limit)."""


def model_bytes(network: Network) -> int:
    """The memory a loaded (frozen) model holds: its weights, the transposed copies its dense
    layers keep (at most the weights again), and the buffers its layers keep for up to
    BUFFERED_SHAPES batches of at most PREDICT_ROWS rows."""
    weights = sum(array.nbytes for array in network.parameters().values())
    per_row = sum(math.prod(layer.output_shape or ()) for layer in network.layers)
    return 2 * weights + BUFFERED_SHAPES * PREDICT_ROWS * per_row * network.dtype.itemsize


class ModelCache:
    """job_id -> CachedModel, within `budget_bytes` (0 disables caching).

    Another API process may delete a job whose model this one holds, so an entry is trusted
    for `revalidate_seconds` after the database last confirmed it (`fresh`); callers check
    the database again past that.
    """

    def __init__(self, budget_bytes: int, revalidate_seconds: float) -> None:
        self.budget_bytes = budget_bytes
        self.revalidate_seconds = revalidate_seconds
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

    def fresh(self, entry: CachedModel) -> bool:
        """Whether `entry` was confirmed by the database within revalidate_seconds."""
        return time.monotonic() - entry.checked_at < self.revalidate_seconds

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
