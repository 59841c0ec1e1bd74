"""How many metric rows per second the database takes through dropnet's own write path
(MetricWriter: one transaction per flush that renews the lease, inserts the points and merges
the block rollups), with W concurrent writers, on SQLite and PostgreSQL.

    python bench/metrics_store.py [--writers 1 4 8] [--seconds 10] [--batch 3000]

A flush of `--batch` rows is what one worker writes per heartbeat (1 s) when its job records
3 metrics per iteration at 1,000 iterations per second. The result bounds how many such
workers one database serves (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.engine.training import MetricRecord
from service.jobs.lease import Lease
from service.jobs.specs import JobSpec
from service.jobs.writer import MetricWriter
from service.store import jobs as job_rows
from service.store.models import Job
from service.store.schema import upgrade
from service.store.session import Database

POSTGRES = os.environ.get("DROPNET_BENCH_POSTGRES_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SPEC = {"name": "bench", "model": {"input_shape": [64], "layers": [
    {"type": "dense", "units": 10, "activation": "softmax"}]},
    "data": {"dataset": "digits"},
    "training": {"iterations": 10**9, "batch_size": 32,
                 "optimizer": {"type": "sgd", "learning_rate": 0.1}}}


def writer_thread(db: Database, batch: int, deadline: float, counts: list[int],
                  latencies: list[float]) -> None:
    worker = job_rows.WorkerIdentity(id=uuid.uuid4().hex, host="bench", pid=os.getpid())
    with db.write() as session:
        accepted = JobSpec.model_validate(SPEC)
        session.add(Job(id=uuid.uuid4().hex, name="bench", status="queued",
                        spec=accepted.stored(), total_iterations=10**9, latest_metrics={}))
    with db.write() as session:
        claim = job_rows.claim(session, worker, lease_seconds=600)
    # Its renewal thread is not started: each flush renews the lease, as in a job.
    writer = MetricWriter(db, Lease(db, claim, lease_seconds=600, interval=1.0),
                          start_iteration=0)
    step = 0
    rows = 0
    while time.monotonic() < deadline:
        records = []
        for _ in range(batch // 3):
            step += 1
            now = time.time()
            records += [MetricRecord(step, "batch_loss", 1.0 / step, now),
                        MetricRecord(step, "learning_rate", 0.1, now),
                        MetricRecord(step, "dropout_rate", 0.5, now)]
        start = time.perf_counter()
        writer.flush(records, iteration=step)
        latencies.append(time.perf_counter() - start)
        rows += len(records)
    counts.append(rows)


def measure(url: str, writers: int, seconds: float, batch: int) -> tuple[float, float]:
    db = Database(url, pool_size=max(2, writers))
    counts: list[int] = []
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=writer_thread,
                                args=(db, batch, deadline, counts, latencies))
               for _ in range(writers)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    db.dispose()
    latencies.sort()
    return sum(counts) / elapsed, latencies[len(latencies) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--batch", type=int, default=3000)
    args = parser.parse_args()
    print(f"flushes of {args.batch} rows, {args.seconds:.0f} s per run, writer threads in one "
          f"process ({os.cpu_count()} cores)")
    print(f"{'database':10s} {'writers':>8s} {'rows/s':>10s} {'flush p50 ms':>13s}")
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = f"sqlite:///{tmp}/bench.db"
        upgrade(sqlite)
        name = f"dropnet_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        postgres = make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
        upgrade(postgres)
        try:
            for label, url in (("sqlite", sqlite), ("postgres", postgres)):
                for writers in args.writers:
                    rate, p50 = measure(url, writers, args.seconds, args.batch)
                    print(f"{label:10s} {writers:8d} {rate:10.0f} {p50 * 1e3:13.1f}")
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
