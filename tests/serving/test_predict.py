"""serving.predict.answer: the owner's model loaded once, inputs checked, any batch size."""

from __future__ import annotations

import anyio
import numpy as np
import pytest

from service.engine.checkpoint import save_model
from service.engine.network import build_network
from service.errors import InvalidInput
from service.serving.cache import PREDICT_ROWS, ModelCache
from service.serving.predict import answer
from service.store.models import TrainedModel
from service.store.session import Database
from tests.factories import add_queued_job

NETWORK = build_network([{"type": "dense", "units": 3, "activation": "softmax"}], [4], seed=0)


def trained_job(db: Database) -> str:
    with db.write() as session:
        job = add_queued_job(session, owner="alice")
        job.status = "succeeded"
        data = save_model(NETWORK)
        session.add(TrainedModel(job_id=job.id, data=data, size_bytes=len(data)))
        return job.id


@pytest.mark.parametrize("rows", [1, PREDICT_ROWS + 1])  # inline, and in a worker thread
def test_answers_are_the_networks_probabilities_and_classes(db: Database, rows: int) -> None:
    job_id, cache = trained_job(db), ModelCache(1 << 20, revalidate_seconds=10)
    x = np.random.default_rng(0).standard_normal((rows, 4)).astype(np.float32)
    first = anyio.run(lambda: answer(db, cache, job_id, "alice", x.tolist(), max_rows=1000))
    again = anyio.run(lambda: answer(db, cache, job_id, "alice", x.tolist(), max_rows=1000))
    expected = NETWORK.predict_proba(x).astype(np.float64)
    np.testing.assert_allclose(first["probabilities"], expected, rtol=1e-6)
    assert first["predictions"] == expected.argmax(axis=1).tolist()
    assert again == first
    assert (cache.misses, cache.hits, len(cache)) == (1, 1, 1)  # loaded once, then cached


def test_inputs_of_another_shape_or_too_many_rows_are_refused(db: Database) -> None:
    job_id, cache = trained_job(db), ModelCache(1 << 20, revalidate_seconds=10)
    with pytest.raises(InvalidInput, match="input shape"):
        anyio.run(lambda: answer(db, cache, job_id, "alice", [[0.0] * 5], max_rows=10))
    with pytest.raises(InvalidInput, match="too many inputs"):
        anyio.run(lambda: answer(db, cache, job_id, "alice", [[0.0] * 4] * 11, max_rows=10))
