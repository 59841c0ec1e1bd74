"""A job's trained model for predictions: from the cache when it may be trusted, else loaded
from the database (and cached), revalidating what the cache holds.

Another API process may delete a job whose model this one caches, so a cached entry is trusted
for the cache's revalidate_seconds after the database last confirmed it; past that `load` asks
the database again.
"""

from __future__ import annotations

import time

from service.engine.checkpoint import load_model
from service.errors import Conflict, NotFound
from service.jobs import lifecycle
from service.store import artifacts
from service.store.session import Database

from .cache import CachedModel, ModelCache, model_bytes


def cached(cache: ModelCache, job_id: str, owner: str) -> CachedModel | None:
    """The owner's model as the cache holds it (fresh or not: see ModelCache.fresh), or None
    when it is not cached. NotFound when the cache holds another owner's model under the id:
    to them the job does not exist. One cache look-up, no I/O."""
    entry = cache.get(job_id)
    if entry is not None and entry.owner != owner:
        raise NotFound(f"no job with id {job_id!r}")
    return entry


def ready(cache: ModelCache, job_id: str, owner: str | None) -> CachedModel | None:
    """The model to answer `owner` with at once: cached, fresh and theirs; else None (also
    for an unknown caller, None), and then the database must be asked. One cache look-up, no
    I/O."""
    entry = cache.get(job_id)
    if owner is None or entry is None or entry.owner != owner or not cache.fresh(entry):
        return None
    return entry


def load(db: Database, cache: ModelCache, job_id: str, owner: str,
         stale: CachedModel | None) -> CachedModel:
    """The job's model from the database, or `stale` (the owner's cached entry) once the
    database confirms that its job and model still exist; a deleted job's model leaves the
    cache. NotFound for a job that is not the owner's, Conflict while it has no model."""
    with db.read() as session:
        try:
            job = lifecycle.get_owned(session, job_id, owner)
        except NotFound:
            if stale is not None:  # the owner's own job: deleted by another API process
                cache.discard(job_id)
            raise
        if stale is not None:
            if artifacts.has_model(session, job_id):
                stale.checked_at = time.monotonic()
                return stale
            cache.discard(job_id)
        model = artifacts.get_model(session, job_id)
        if model is None:
            raise Conflict(f"job {job_id} is {job.status} and has no trained model yet")
        data = model.data
    network, metadata = load_model(data)
    network.freeze()
    entry = CachedModel(job_id=job_id, owner=owner, network=network,
                        nbytes=model_bytes(network), class_names=metadata.get("class_names"))
    cache.put(entry)
    return entry
