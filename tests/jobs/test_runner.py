import threading
import time

import numpy as np
import pytest
from sqlalchemy import select, update

from service.engine.checkpoint import load_model
from service.jobs.runner import JobRunner
from service.store import jobs as job_rows
from service.store import metrics as metric_rows
from service.store.models import Checkpoint, Job, MetricPoint, MetricSeries, TrainedModel
from tests.factories import add_queued_job, spec

WORKER = job_rows.WorkerIdentity(id="w1", host="host-a", pid=101)


def queue(db, spec_=None):
    with db.write() as session:
        return add_queued_job(session, spec_=spec_).id


def history(db, job_id):
    with db.read() as session:
        rows = session.execute(
            select(MetricSeries.key, MetricPoint.step, MetricPoint.value)
            .join(MetricPoint, MetricPoint.series_id == MetricSeries.id)
            .where(MetricSeries.job_id == job_id)
            .order_by(MetricSeries.key, MetricPoint.step)).all()
    return [tuple(r) for r in rows]


def job(db, job_id):
    with db.read() as session:
        return session.get(Job, job_id)


def weights(db, job_id):
    with db.read() as session:
        network, _ = load_model(session.get(TrainedModel, job_id).data)
    return network.state_dict()


def when(db, job_id, predicate, timeout=30.0):
    """Wait in a thread until the job row satisfies `predicate`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = job(db, job_id)
        if predicate(row):
            return row
        time.sleep(0.01)
    raise AssertionError("condition not reached")


def test_runs_a_job_to_success_with_complete_metrics_and_a_model(db, settings):
    job_id = queue(db)
    result = JobRunner(db, settings, WORKER).run()
    assert (result.job_id, result.status, result.iteration) == (job_id, "succeeded", 60)
    row = job(db, job_id)
    assert row.status == "succeeded" and row.finished_at is not None and row.attempts == 1
    assert row.iteration == 60 and row.lease_expires_at is None
    steps = [step for key, step, _ in history(db, job_id) if key == "batch_loss"]
    assert steps == list(range(1, 61))
    evals = [step for key, step, _ in history(db, job_id) if key == "test_accuracy"]
    assert evals == [20, 40, 60]
    assert set(row.latest_metrics) >= {"batch_loss", "test_accuracy", "dropout_rate"}
    with db.read() as session:
        assert session.get(Checkpoint, job_id) is None
    assert set(weights(db, job_id)) == {"layers.0.weight", "layers.0.bias", "layers.2.weight",
                                        "layers.2.bias"}
    assert JobRunner(db, settings, WORKER).run() is None  # nothing left


def test_same_spec_and_seed_give_identical_histories_and_weights(db, settings):
    a, b = queue(db), queue(db)
    runner = JobRunner(db, settings, WORKER)
    runner.run()
    runner.run()
    assert history(db, a) == history(db, b)
    wa, wb = weights(db, a), weights(db, b)
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_shutdown_checkpoints_releases_and_resumes_bit_identically(db, settings):
    long = spec(iterations=5000, eval_every=250,
                checkpoint={"every_iterations": 100_000, "every_seconds": 3600})
    reference, interrupted = queue(db, long), queue(db, long)
    JobRunner(db, settings, WORKER).run(reference)

    shutdown = threading.Event()
    runner = JobRunner(db, settings, WORKER, shutdown=shutdown)
    done = []
    thread = threading.Thread(target=lambda: done.append(runner.run(interrupted)))
    thread.start()
    when(db, interrupted, lambda r: r.iteration >= 50)
    shutdown.set()
    thread.join(30)
    released = done[0]
    assert released.status == "queued" and 50 <= released.iteration < 5000
    row = job(db, interrupted)
    assert row.status == "queued" and row.checkpoint_iteration == released.iteration
    with db.read() as session:
        series = metric_rows.series_ids(session, interrupted, ["batch_loss"])["batch_loss"]
    # A dead attempt may have written past the checkpoint: those rows must be replaced.
    with db.write() as session:
        metric_rows.insert_points(session, [(series, released.iteration + 1, 123.0, 0.0),
                                            (series, released.iteration + 2, 456.0, 0.0)])
    finished = JobRunner(db, settings, WORKER).run(interrupted)
    assert finished.status == "succeeded"
    assert history(db, interrupted) == history(db, reference)
    wa, wb = weights(db, reference), weights(db, interrupted)
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    with db.read() as session:
        outcomes = [a.outcome for a in job_rows.attempts(session, interrupted)]
    assert outcomes == ["released", "succeeded"]


def test_periodic_checkpoints_are_stored_with_their_metrics(db, settings):
    job_id = queue(db, spec(iterations=100, checkpoint={"every_iterations": 25}))
    shutdown = threading.Event()
    runner = JobRunner(db, settings, WORKER, shutdown=shutdown)
    thread = threading.Thread(target=runner.run)
    seen = []

    def watch():
        while thread.is_alive():
            with db.read() as session:
                checkpoint = session.get(Checkpoint, job_id)
                if checkpoint is not None:
                    stored = session.scalar(
                        select(MetricPoint.step).join(MetricSeries).where(
                            MetricSeries.job_id == job_id, MetricSeries.key == "batch_loss",
                            MetricPoint.step == checkpoint.iteration))
                    seen.append((checkpoint.iteration, stored))
            time.sleep(0.005)

    thread.start()
    watch()
    assert seen, "no checkpoint observed"
    assert all(iteration % 25 == 0 and stored == iteration for iteration, stored in seen)


def test_cancel_stops_a_running_job_and_keeps_its_metrics(db, settings):
    job_id = queue(db, spec(iterations=100_000))
    runner = JobRunner(db, settings, WORKER)
    done = []
    thread = threading.Thread(target=lambda: done.append(runner.run()))
    thread.start()
    when(db, job_id, lambda r: r.iteration > 20)
    with db.write() as session:
        job_rows.request_cancel(session, session.get(Job, job_id))
    thread.join(30)
    assert done[0].status == "cancelled"
    row = job(db, job_id)
    assert row.status == "cancelled" and row.finished_at is not None
    steps = [s for k, s, _ in history(db, job_id) if k == "batch_loss"]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 20


def test_non_finite_loss_fails_the_job_and_keeps_metrics_up_to_it(db, settings):
    diverging = spec(iterations=500, loss="mse",
                     optimizer={"type": "sgd", "learning_rate": 50.0},
                     dropout_schedule={"type": "constant"})
    diverging["model"]["layers"] = [{"type": "dense", "units": 32},
                                    {"type": "dense", "units": 10}]
    job_id = queue(db, diverging)
    with np.errstate(all="ignore"):
        result = JobRunner(db, settings, WORKER).run()
    assert result.status == "failed"
    row = job(db, job_id)
    k = int(row.error.rsplit("iteration ", 1)[1].split()[0])
    assert row.error.startswith(f"loss is not finite at iteration {k}")
    steps = [s for key, s, _ in history(db, job_id) if key == "batch_loss"]
    assert steps == list(range(1, k))


def test_a_fenced_off_attempt_writes_nothing_more(db, settings):
    job_id = queue(db, spec(iterations=100_000))
    runner = JobRunner(db, settings, WORKER)
    done = []
    thread = threading.Thread(target=lambda: done.append(runner.run()))
    thread.start()
    row = when(db, job_id, lambda r: r.iteration > 10)
    # Another worker took the job over (as after an expired lease): the token moves on.
    with db.write() as session:
        session.execute(update(Job).where(Job.id == job_id)
                        .values(lease_token=row.lease_token + 1))
    thread.join(30)
    assert done[0].status == "lease_lost"
    before = history(db, job_id)
    time.sleep(3 * settings.heartbeat_seconds)
    assert history(db, job_id) == before
    assert job(db, job_id).status == "running"  # the new owner's to finish


@pytest.mark.parametrize("lost_dataset", [True])
def test_a_job_whose_data_cannot_load_fails_with_the_reason(db, settings, lost_dataset):
    job_id = queue(db, {**spec(), "data": {"dataset_id": "gone"}})
    result = JobRunner(db, settings, WORKER).run()
    assert result.status == "failed"
    assert "gone" in job(db, job_id).error


def test_a_doorbell_for_a_job_no_longer_queued_runs_the_oldest_queued_job(db, settings):
    first, second = queue(db), queue(db)
    assert JobRunner(db, settings, WORKER).run(first).status == "succeeded"
    assert JobRunner(db, settings, WORKER).run(first) is None, "without or_oldest: nothing"
    result = JobRunner(db, settings, WORKER).run(first, or_oldest=True)
    assert (result.job_id, result.status) == (second, "succeeded")
    assert JobRunner(db, settings, WORKER).run(first, or_oldest=True) is None
