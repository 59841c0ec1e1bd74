"""The blocking Client against a real `dropnet serve`: every route, typed answers, errors."""

from __future__ import annotations

import io

import numpy as np
import pytest

from service.client import Client, DropnetError, Job
from service.engine.datasets import load_builtin
from tests.client.conftest import KEY, OTHER_KEY
from tests.e2e.conftest import Server, free_port
from tests.factories import dataset_npz, spec


@pytest.fixture(scope="module")
def trained(server: Server) -> Job:
    """A job trained to the end (120 iterations, evaluated every 20)."""
    with Client(server.url, api_key=KEY) as dropnet:
        job = dropnet.submit(spec(iterations=120, eval_every=20))
        return dropnet.wait(job.id, timeout=120, poll_seconds=0.1)


def test_submit_get_wait_and_list(client: Client) -> None:
    submitted = client.submit(spec(iterations=40, eval_every=20), idempotency_key="once")
    assert submitted.status == "queued" and submitted.progress.total == 40
    assert client.submit(spec(iterations=40, eval_every=20),
                         idempotency_key="once").id == submitted.id
    done = client.wait(submitted.id, timeout=120, poll_seconds=0.1)
    assert done.status == "succeeded" and done.finished
    assert done.progress.iteration == 40 and set(done.metrics) >= {"test_accuracy",
                                                                  "batch_loss"}
    assert client.get(submitted.id) == done
    page = client.jobs(status="succeeded", limit=100)
    assert submitted.id in [job.id for job in page.data]
    assert all(job.status == "succeeded" for job in page.data)


def test_attempts_metrics_and_history(client: Client, trained: Job) -> None:
    (attempt,) = client.attempts(trained.id)
    assert attempt.number == 1 and attempt.outcome == "succeeded" and attempt.ended_at
    keys = {key.key: key for key in client.metrics(trained.id)}
    assert keys["batch_loss"].count == 120 and keys["test_accuracy"].last_step == 120
    # Pages of 7 points: the client follows the cursors to every step, once each.
    series = client.history(trained.id, "batch_loss", page_size=7)
    assert [p.step for p in series.points] == list(range(1, 121)) and not series.downsampled
    ranged = client.history(trained.id, "batch_loss", start_step=10, end_step=19)
    assert [p.step for p in ranged.points] == list(range(10, 20))
    sampled = client.history(trained.id, "batch_loss", max_points=10)
    assert sampled.downsampled and 2 <= len(sampled.points) <= 10
    assert sampled.points[0].step == 1 and sampled.points[-1].step == 120


def test_predict_plain_and_with_mc_dropout(client: Client, trained: Job) -> None:
    rows = load_builtin("digits").x_test[:5]
    plain = client.predict(trained.id, rows)  # a numpy array goes as JSON rows
    assert len(plain.predictions) == 5 and plain.mc_samples is None and plain.std is None
    assert np.allclose(np.sum(plain.probabilities, axis=1), 1.0, atol=1e-6)
    mc = client.predict(trained.id, rows.tolist(), mc_samples=20, seed=3)
    assert mc.mc_samples == 20 and mc.entropy is not None and len(mc.entropy) == 5
    assert mc.std is not None and np.shape(mc.std) == (5, 10)
    assert client.predict(trained.id, rows, mc_samples=20, seed=3) == mc  # same seed


def test_download_model(client: Client, trained: Job) -> None:
    model = client.download_model(trained.id)
    with np.load(io.BytesIO(model), allow_pickle=False) as archive:
        assert any(name.startswith("layers.") for name in archive.files)


def test_datasets_upload_list_get_delete(client: Client, tmp_path) -> None:
    path = tmp_path / "points.npz"
    path.write_bytes(dataset_npz(n_train=30, n_test=9, features=4, classes=3))
    uploaded = client.upload_dataset(path, name="points")
    assert (uploaded.name, uploaded.n_train, uploaded.n_test, uploaded.input_shape,
            uploaded.n_classes) == ("points", 30, 9, [4], 3)
    csv = b"a,b,label\n" + b"".join(b"%d,%d,%d\n" % (i, -i, i % 2) for i in range(40))
    from_csv = client.upload_dataset(csv, filename="pairs.csv", label_column="label",
                                     test_fraction=0.5, split_seed=1)
    assert from_csv.format == "csv" and from_csv.n_test == 20 and from_csv.name == "pairs.csv"
    assert {uploaded.id, from_csv.id} <= {d.id for d in client.datasets(limit=100).data}
    assert client.get_dataset(uploaded.id) == uploaded
    client.delete_dataset(uploaded.id)
    with pytest.raises(DropnetError) as missing:
        client.get_dataset(uploaded.id)
    assert missing.value.status == 404
    assert "digits" in {entry["name"] for entry in client.builtin_datasets().data}


def test_sweep_create_list_read_csv_and_delete(client: Client) -> None:
    created = client.sweep({"name": "seeds", "base": spec(iterations=20, eval_every=10),
                            "parameters": {"training.seed": [1, 2]}})
    assert created.counts == {"queued": 2} and created.runs is None
    assert created.id in [s.id for s in client.sweeps(limit=100).data]
    for run in client.jobs(sweep_id=created.id).data:
        client.wait(run.id, timeout=120, poll_seconds=0.1)
    read = client.get_sweep(created.id)
    assert read.status == "succeeded" and read.runs is not None and len(read.runs) == 2
    assert read.best_run is not None and read.best_run.test_accuracy is not None
    assert read.summary and read.summary[0].parameter == "training.seed"
    rows = client.runs_csv(created.id).splitlines()
    assert len(rows) == 3 and "training.seed" in rows[0]
    with pytest.raises(DropnetError) as finished:
        client.cancel_sweep(created.id)
    assert (finished.value.status, finished.value.code) == (409, "conflict")
    client.delete_sweep(created.id)
    with pytest.raises(DropnetError) as gone:
        client.get_sweep(created.id)
    assert gone.value.code == "not_found"


def test_cancel_sweep(client: Client) -> None:
    created = client.sweep({"name": "long", "base": spec(iterations=50_000, eval_every=10_000),
                            "parameters": {"training.seed": [1, 2]}})
    cancelling = client.cancel_sweep(created.id)
    assert cancelling.runs is not None and len(cancelling.runs) == 2
    for run in cancelling.runs:
        assert client.wait(run.job_id, timeout=60, poll_seconds=0.1).status == "cancelled"
    assert client.get_sweep(created.id).counts == {"cancelled": 2}


def test_cancel_and_delete(client: Client) -> None:
    job = client.submit(spec(iterations=50_000, eval_every=10_000))
    cancelled = client.cancel(job.id)
    assert cancelled.cancel_requested or cancelled.status == "cancelled"
    assert client.wait(job.id, timeout=60, poll_seconds=0.1).status == "cancelled"
    client.delete(job.id)
    with pytest.raises(DropnetError) as gone:
        client.get(job.id)
    assert (gone.value.status, gone.value.code) == (404, "not_found")


def test_a_refused_spec_raises_the_api_error(client: Client) -> None:
    bad = spec()
    bad["model"]["layers"][1]["rate"] = 1.5
    with pytest.raises(DropnetError) as refused:
        client.submit(bad)
    error = refused.value
    assert (error.status, error.code) == (422, "invalid_spec")
    assert error.details[0]["path"] == "model.layers[1].rate"
    assert error.details[0]["received"] == 1.5
    assert "model.layers[1].rate" in str(error) and "received 1.5" in str(error)


def test_owners_and_keys(server: Server, trained: Job) -> None:
    with Client(server.url, api_key=OTHER_KEY) as bob, pytest.raises(DropnetError) as hidden:
        bob.get(trained.id)
    assert hidden.value.status == 404  # another owner's job does not exist for bob
    with Client(server.url) as anonymous, pytest.raises(DropnetError) as refused:
        anonymous.jobs()
    assert refused.value.status == 401


def test_health_and_prometheus(client: Client) -> None:
    health = client.health()
    assert health.ready and health.checks["migrations"]["ok"] is True
    assert "dropnet_queue_depth" in client.prometheus_metrics()


def test_an_unreachable_server_is_a_dropnet_error() -> None:
    with Client(f"http://127.0.0.1:{free_port()}", timeout=2) as nowhere, \
            pytest.raises(DropnetError) as unreachable:
        nowhere.health()
    assert unreachable.value.status is None and unreachable.value.code == "unreachable"
