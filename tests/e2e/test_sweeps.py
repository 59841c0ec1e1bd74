"""A sweep through a real `dropnet serve`: max_concurrent holds with 2 local workers and with
2 Celery workers, and the held-back runs still all run."""

from __future__ import annotations

import copy
import itertools
import time

from tests.e2e.conftest import Server
from tests.factories import DIGITS_SPEC


def run_held_sweep(server: Server, timeout: float = 120.0) -> None:
    """A 3-run sweep with max_concurrent 1: never 2 running, all 3 succeed, attempts in turn."""
    base = copy.deepcopy(DIGITS_SPEC)
    base["training"].update(iterations=150, eval_every=50)
    sweep = server.api.sweep({"name": "held", "base": base, "max_concurrent": 1,
                              "parameters": {"training.seed": [1, 2, 3]}})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sweep = server.api.get_sweep(sweep.id)
        assert sweep.counts.get("running", 0) <= 1, sweep.counts
        if sweep.status not in ("queued", "running"):
            break
        time.sleep(0.05)
    assert sweep.counts == {"succeeded": 3}, server.log.read_text()[-3000:]
    assert sweep.runs is not None
    spans = sorted((attempt.started_at, attempt.ended_at) for run in sweep.runs
                   for attempt in server.api.attempts(run.job_id))
    for (_, end), (start, _) in itertools.pairwise(spans):
        # One run at a time, even with two idle workers.
        assert end is not None and start >= end, spans


def test_two_local_workers_never_run_more_than_max_concurrent_runs(serve) -> None:
    run_held_sweep(serve(env={"DROPNET_WORKERS": "2", "DROPNET_POLL_SECONDS": "0.2",
                              "DROPNET_BLAS_THREADS": "1"}))


def test_two_celery_workers_never_run_more_than_max_concurrent_runs(serve, workers,
                                                                    scale_env) -> None:
    """Doorbells of held-back runs are consumed without a claim; the reconciler rings again
    once a slot frees, so every run still finishes."""
    server = serve(env=scale_env, ready=False)
    deadline = time.monotonic() + 60
    while not server.alive():
        assert time.monotonic() < deadline, server.log.read_text()[-4000:]
        time.sleep(0.1)
    workers(scale_env)
    workers(scale_env)
    run_held_sweep(server)
