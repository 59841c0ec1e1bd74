"""ModelCache: bounded by bytes, least recently used evicted first, entries trusted for a while."""

from __future__ import annotations

import time

import pytest

from service.engine.network import build_network
from service.serving.cache import (
    BUFFERED_SHAPES,
    PREDICT_ROWS,
    CachedModel,
    ModelCache,
    model_bytes,
)

NETWORK = build_network([{"type": "dense", "units": 3, "activation": "softmax"}], [4], seed=0)


def entry(job_id: str, nbytes: int = 100, owner: str = "") -> CachedModel:
    return CachedModel(job_id=job_id, owner=owner, network=NETWORK, nbytes=nbytes)


def test_the_least_recently_used_entries_leave_first_when_over_budget() -> None:
    cache = ModelCache(budget_bytes=300, revalidate_seconds=10)
    for job_id in ("a", "b", "c"):
        cache.put(entry(job_id))
    assert cache.get("a") is not None  # "a" is now the most recently used
    cache.put(entry("d"))
    assert cache.get("b") is None
    assert [cache.get(j) is not None for j in ("a", "c", "d")] == [True, True, True]
    assert (len(cache), cache.size_bytes) == (3, 300)
    cache.put(entry("e", nbytes=150))  # evicts until it fits: "a", then "c"
    assert [j for j in "acde" if cache.get(j) is not None] == ["d", "e"]
    assert cache.size_bytes == 250


def test_hits_and_misses_count_every_look_up() -> None:
    cache = ModelCache(budget_bytes=1000, revalidate_seconds=10)
    cache.put(entry("a"))
    cache.get("a"), cache.get("a"), cache.get("missing")
    assert (cache.hits, cache.misses) == (2, 1)


def test_an_entry_larger_than_the_budget_is_not_cached() -> None:
    cache = ModelCache(budget_bytes=100, revalidate_seconds=10)
    cache.put(entry("a", nbytes=101))
    assert cache.get("a") is None and cache.size_bytes == 0
    disabled = ModelCache(budget_bytes=0, revalidate_seconds=10)
    disabled.put(entry("a", nbytes=1))
    assert len(disabled) == 0


def test_replacing_and_discarding_keep_the_byte_count() -> None:
    cache = ModelCache(budget_bytes=1000, revalidate_seconds=10)
    cache.put(entry("a", nbytes=100))
    cache.put(entry("a", nbytes=300))
    assert (len(cache), cache.size_bytes) == (1, 300)
    cache.discard("a")
    cache.discard("a")  # already gone: nothing to do
    assert (len(cache), cache.size_bytes) == (0, 0)


@pytest.mark.parametrize(("age", "fresh"), [(0.0, True), (9.0, True), (11.0, False)])
def test_an_entry_is_fresh_for_revalidate_seconds_after_it_was_checked(age: float,
                                                                       fresh: bool) -> None:
    cache = ModelCache(budget_bytes=1000, revalidate_seconds=10)
    checked = entry("a")
    checked.checked_at = time.monotonic() - age
    assert cache.fresh(checked) is fresh


def test_model_bytes_counts_the_weights_twice_and_the_buffers_of_the_batch_shapes() -> None:
    weights = (4 * 3 + 3) * 4  # float32 W (4, 3) and b (3,)
    buffers = BUFFERED_SHAPES * PREDICT_ROWS * 3 * 4  # the one layer's output (rows, 3)
    assert model_bytes(NETWORK) == 2 * weights + buffers
