"""Client benchmarks against a real `dropnet serve` (one training worker, SQLite):

    python bench/client.py [--requests N] [--jobs N]

- overhead: `Client.get(job)` (request, status check, pydantic model) against the same GET
  with httpx and `response.json()`, alternating; the median of the paired differences.
- end: how long after a job's end the caller knows it, `follow` (the end event) against
  `wait(poll_seconds=0.5)` (polling), measured from the job's `finished_at` (the same clock:
  one machine), over --jobs jobs each; the median of each.

Exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import service_speed  # the shared server and table helpers, beside this file

from service.client import Client, EndEvent

SPEC = {"name": "bench-client",
        "model": {"input_shape": [64],
                  "layers": [{"type": "dense", "units": 32, "activation": "relu"},
                             {"type": "dropout", "rate": 0.5},
                             {"type": "dense", "units": 10, "activation": "softmax"}]},
        "data": {"dataset": "digits"},
        "training": {"iterations": 400, "batch_size": 32, "eval_every": 100,
                     "optimizer": {"type": "sgd", "learning_rate": 0.1, "momentum": 0.9}}}


def overhead(client: Client, raw: httpx.Client, job_id: str,
             requests: int) -> list[service_speed.Measurement]:
    typed, plain = [], []
    for index in range(requests):
        # Alternating which goes first, so that neither always follows the other's request.
        for name in ("typed", "plain") if index % 2 else ("plain", "typed"):
            start = time.perf_counter()
            if name == "typed":
                client.get(job_id)
            else:
                raw.get(f"/v1/jobs/{job_id}").json()
            (typed if name == "typed" else plain).append(time.perf_counter() - start)
    difference_us = statistics.median(t - p for t, p in zip(typed, plain, strict=True)) * 1e6
    return [service_speed.Measurement(
        "Client.get over httpx + json()", difference_us, "us", 1000, "lower",
        f"median of paired differences; medians {statistics.median(typed) * 1e3:.2f} ms "
        f"against {statistics.median(plain) * 1e3:.2f} ms, {requests} each")]


def end_delays(client: Client, jobs: int) -> list[service_speed.Measurement]:
    followed, polled = [], []
    for _ in range(jobs):
        job = client.submit(SPEC)
        end = [event for event in client.follow(job.id) if isinstance(event, EndEvent)]
        seen = time.time()
        finished = client.get(job.id).finished_at
        assert end and finished is not None
        followed.append(seen - finished.timestamp())
        job = client.submit(SPEC)
        client.wait(job.id, poll_seconds=0.5)
        seen = time.time()
        finished = client.get(job.id).finished_at
        assert finished is not None
        polled.append(seen - finished.timestamp())
    follow_ms, poll_ms = statistics.median(followed) * 1e3, statistics.median(polled) * 1e3
    return [
        service_speed.Measurement("end known by follow, after finished_at", follow_ms, "ms",
                                  500, "lower", f"median of {jobs}, max "
                                  f"{max(followed) * 1e3:.0f} ms"),
        service_speed.Measurement("end known by wait (0.5 s polls)", poll_ms, "ms", 1000,
                                  "lower", f"median of {jobs}, max {max(polled) * 1e3:.0f} ms")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        url, _ = service_speed.new_database(workdir)
        with service_speed.serving(url, workdir, DROPNET_WORKERS="1",
                                   DROPNET_BLAS_THREADS="1") as server, \
                Client(server.url) as client:
            service_speed.log("training one job for the overhead benchmark")
            job = client.submit(SPEC)
            client.wait(job.id)
            results = overhead(client, server.client, job.id, args.requests)
            service_speed.log(f"{args.jobs} jobs followed, {args.jobs} polled")
            results += end_delays(client, args.jobs)
    service_speed.print_table(results)
    return 0 if all(result.passed for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
