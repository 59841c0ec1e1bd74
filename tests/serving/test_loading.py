"""Loading a job's model for predictions: from the cache while fresh, revalidated after, and
dropped from the cache when its job is gone (on SQLite and PostgreSQL)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from service.engine.checkpoint import save_model
from service.engine.network import build_network
from service.errors import Conflict, NotFound
from service.serving import loading
from service.serving.cache import ModelCache
from service.store.models import Job, TrainedModel
from service.store.session import Database
from tests.factories import add_queued_job

NETWORK = build_network([{"type": "dense", "units": 3, "activation": "softmax"}], [4], seed=0)
X = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)


def trained_job(db: Database, *, owner: str = "alice", model: bool = True) -> str:
    with db.write() as session:
        job = add_queued_job(session, owner=owner)
        job.status = "succeeded"
        if model:
            data = save_model(NETWORK)
            session.add(TrainedModel(job_id=job.id, data=data, size_bytes=len(data)))
        return job.id


@pytest.fixture
def cache() -> ModelCache:
    return ModelCache(budget_bytes=1 << 20, revalidate_seconds=10)


def test_load_reads_freezes_and_caches_the_model(db: Database, cache: ModelCache) -> None:
    job_id = trained_job(db)
    entry = loading.load(db, cache, job_id, "alice", None)
    assert (entry.job_id, entry.owner) == (job_id, "alice")
    np.testing.assert_allclose(entry.network.predict_proba(X), NETWORK.predict_proba(X))
    assert loading.cached(cache, job_id, "alice") is entry
    assert loading.ready(cache, job_id, "alice") is entry


def test_load_refuses_another_owners_job_and_a_job_without_a_model(db: Database,
                                                                   cache: ModelCache) -> None:
    job_id, untrained_id = trained_job(db), trained_job(db, model=False)
    with pytest.raises(NotFound):
        loading.load(db, cache, job_id, "bob", None)
    with pytest.raises(Conflict, match="has no trained model"):
        loading.load(db, cache, untrained_id, "alice", None)
    assert len(cache) == 0


def test_a_cached_model_is_another_owners_not_found_and_never_ready(db: Database,
                                                                    cache: ModelCache) -> None:
    job_id = trained_job(db)
    loading.load(db, cache, job_id, "alice", None)
    with pytest.raises(NotFound):
        loading.cached(cache, job_id, "bob")
    assert loading.ready(cache, job_id, "bob") is None
    assert loading.ready(cache, job_id, None) is None  # an unknown caller
    assert loading.cached(cache, "not-cached", "alice") is None


def test_a_stale_entry_is_ready_no_more_and_revalidated_by_load(db: Database,
                                                                cache: ModelCache) -> None:
    job_id = trained_job(db)
    entry = loading.load(db, cache, job_id, "alice", None)
    entry.checked_at = time.monotonic() - 11
    assert loading.ready(cache, job_id, "alice") is None
    assert loading.cached(cache, job_id, "alice") is entry  # still cached, to revalidate
    assert loading.load(db, cache, job_id, "alice", entry) is entry  # the same network kept
    assert cache.fresh(entry) and loading.ready(cache, job_id, "alice") is entry


def test_a_stale_entry_whose_job_was_deleted_leaves_the_cache(db: Database,
                                                              cache: ModelCache) -> None:
    job_id = trained_job(db)
    entry = loading.load(db, cache, job_id, "alice", None)
    with db.write() as session:
        session.delete(session.get(Job, job_id))  # as another API process would
    with pytest.raises(NotFound):
        loading.load(db, cache, job_id, "alice", entry)
    assert len(cache) == 0


def test_a_stale_entry_whose_model_is_gone_leaves_the_cache(db: Database,
                                                                  cache: ModelCache) -> None:
    job_id = trained_job(db)
    entry = loading.load(db, cache, job_id, "alice", None)
    with db.write() as session:
        session.delete(session.get(TrainedModel, job_id))
    with pytest.raises(Conflict):
        loading.load(db, cache, job_id, "alice", entry)
    assert len(cache) == 0
