"""Prometheus metrics, safe across processes.

Counters that worker processes increment (iterations, metric rows, finished jobs) use
prometheus_client's multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set (`dropnet serve`
and `dropnet worker` set it up), so a scrape of the API sums every local worker. Gauges about
the whole cluster (jobs by status, queue depth, training speed, live workers) are read from the
database at scrape time, so they include Celery workers on other machines.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from .store import jobs as job_rows
from .store import workers as worker_rows
from .store.session import Database

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

ITERATIONS = Counter("dropnet_training_iterations", "Training iterations completed by workers")
METRIC_ROWS = Counter("dropnet_metric_rows_written", "Metric rows written to the database")
JOBS_ENDED = Counter("dropnet_jobs_ended", "Job attempts that ended, by outcome", ["outcome"])
REQUEST_SECONDS = Histogram(
    "dropnet_http_request_duration_seconds", "HTTP request latency by route",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))


class DatabaseCollector(Collector):
    """Cluster-wide gauges, read from the jobs and workers tables at scrape time."""

    def __init__(self, db: Database, worker_window_seconds: float) -> None:
        self.db = db
        self.window = worker_window_seconds

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.db.read() as session:
            counts = job_rows.counts_by_status(session)
            speed = job_rows.running_speed(session)
            workers = len(worker_rows.seen_since(session, self.window))
        jobs = GaugeMetricFamily("dropnet_jobs", "Jobs by status", labels=["status"])
        for status, count in counts.items():
            jobs.add_metric([status], count)
        yield jobs
        yield GaugeMetricFamily("dropnet_queue_depth", "Jobs waiting for a worker",
                                value=counts[job_rows.QUEUED])
        yield GaugeMetricFamily("dropnet_training_iterations_per_second",
                                "Sum of the running jobs' training speed", value=speed)
        yield GaugeMetricFamily("dropnet_workers_seen", "Workers that reported recently",
                                value=workers)


def scrape(db: Database, worker_window_seconds: float) -> bytes:
    """The text exposition of every metric: this process's (or all processes' in multiprocess
    mode) plus the database gauges."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(registry)
    else:
        for collector in (ITERATIONS, METRIC_ROWS, JOBS_ENDED, REQUEST_SECONDS):
            registry.register(collector)
    registry.register(DatabaseCollector(db, worker_window_seconds))
    return generate_latest(registry)
