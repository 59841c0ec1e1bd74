"""Service benchmarks: metric logging, history reads, predictions, submissions, memory.

    python bench/service_speed.py [all|logging|history|predict|submit|memory] [--runs N]

Each benchmark prints its measurements and the target; the command exits non-zero when a
target is missed. Everything runs against real SQLite files in a temporary directory and,
except for `logging`, against a real `dropnet serve` subprocess over loopback HTTP. Load tests
use wrk when it is on PATH (`apt-get install -y wrk`), else a small asyncio client, always in
a separate process. Machines are noisy: timings are medians of repeated runs (memory: one
sweep, sampled every 10 models).

- logging: JobRunner training a 64-64-64-10 dropout MLP (batch 32, 20,000 iterations, every
  iteration's metrics written to SQLite) against the engine's Trainer alone with an on_metrics
  that discards; runs alternate, the overhead is the median of the paired ratios.
- history: 1,000,000 points inserted with insert_points, then GET .../metrics/batch_loss
  ?max_points=1000 and pages of ?limit=10000 (walking the cursor).
- predict: POST /v1/jobs/{id}/predict (batch of 1) against GET /healthz, alternating.
- submit: POST /v1/jobs for 10 s with DROPNET_WORKERS=0; accepted jobs counted in the database.
- memory: the API's RSS while predicting on 100 trained jobs (default budget, then a small one
  that must evict), and one worker's RSS after each of 30 jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import func, select

from service.config import Settings
from service.engine.network import build_network
from service.engine.training import Trainer, TrainingConfig
from service.jobs import data as job_data
from service.jobs import submission
from service.jobs.runner import JobRunner
from service.jobs.specs import JobSpec
from service.store import jobs as job_rows
from service.store import metrics as metric_rows
from service.store.models import Job
from service.store.schema import upgrade
from service.store.session import Database

DROPNET = str(Path(sys.executable).parent / "dropnet")
WORKER = job_rows.WorkerIdentity(id="bench", host="bench", pid=os.getpid())
MiB = 1024 * 1024

LOGGING_ITERATIONS = 20_000
HISTORY_POINTS = 1_000_000
MEMORY_MODELS = 100
WORKER_JOBS = 30
SMALL_CACHE_MODELS = 10
"""The small cache budget holds about this many of the memory benchmark's models."""


def mlp_spec(hidden: list[int], *, iterations: int, batch_size: int = 32, seed: int = 0,
             eval_every: int | None = None, dropout: float = 0.5) -> dict[str, Any]:
    """A digits MLP job: dense(relu) + dropout per hidden layer, softmax output."""
    layers: list[dict[str, Any]] = []
    for units in hidden:
        layers += [{"type": "dense", "units": units, "activation": "relu"},
                   {"type": "dropout", "rate": dropout}]
    layers.append({"type": "dense", "units": 10, "activation": "softmax"})
    training: dict[str, Any] = {
        "iterations": iterations, "batch_size": batch_size, "seed": seed,
        "optimizer": {"type": "sgd", "learning_rate": 0.05, "momentum": 0.9},
        "dropout_schedule": {"type": "step", "every": max(1, iterations // 4), "delta": -0.1,
                             "min": 0.1}}
    if eval_every is not None:
        training["eval_every"] = eval_every
    return {"name": f"bench-mlp-{'-'.join(map(str, hidden))}",
            "model": {"input_shape": [64], "layers": layers},
            "data": {"dataset": "digits", "test_fraction": 0.25}, "training": training}


# -- results ---------------------------------------------------------------------------------

@dataclass
class Measurement:
    name: str
    value: float
    unit: str
    target: float
    better: str  # "lower" or "higher"
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.value <= self.target if self.better == "lower" else self.value >= self.target

    def row(self) -> list[str]:
        op = "<=" if self.better == "lower" else ">="
        return [self.name, f"{self.value:,.1f} {self.unit}", f"{op} {self.target:,.0f} {self.unit}",
                "ok" if self.passed else "MISSED", self.detail]


def print_table(results: list[Measurement]) -> None:
    header = ["measurement", "result", "target", "", "details"]
    rows = [header, *[m.row() for m in results]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
              + "  " + row[-1])
        if index == 0:
            print("  ".join("-" * w for w in widths) + "  " + "-" * 7)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


# -- databases, jobs, processes --------------------------------------------------------------

def new_database(directory: Path, name: str = "dropnet.db") -> tuple[str, Database]:
    url = f"sqlite:///{directory / name}"
    upgrade(url)
    return url, Database(url)


def bench_settings(url: str, **overrides: Any) -> Settings:
    return Settings(database_url=url, workers=0, _env_file=None, **overrides)


def queue_jobs(db: Database, settings: Settings, specs: list[dict[str, Any]]) -> list[str]:
    """Queue jobs through the real submission path (checks included)."""
    ids = []
    with db.write() as session:
        for spec in specs:
            job = submission.submit(session, JobSpec.model_validate(spec), owner="",
                                    settings=settings)
            ids.append(job.id)
    return ids


def train_jobs(db: Database, settings: Settings, specs: list[dict[str, Any]]) -> list[str]:
    """Queue and run jobs with JobRunner (as a worker would) until each has succeeded."""
    ids = queue_jobs(db, settings, specs)
    runner = JobRunner(db, settings, WORKER)
    for job_id in ids:
        result = runner.run(job_id)
        if result is None or result.status != job_rows.SUCCEEDED:
            raise RuntimeError(f"job {job_id} did not succeed: {result}")
    return ids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int) -> float:
    """Resident set size of process `pid`, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Server:
    """A `dropnet serve` subprocess (the console script) on a free port."""

    def __init__(self, url: str, directory: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / f"serve-{self.port}.log"
        full_env = {**os.environ, "DROPNET_DATABASE_URL": url, "DROPNET_PORT": str(self.port),
                    "DROPNET_HOST": "127.0.0.1", "DROPNET_WORKERS": "0",
                    "DROPNET_LOG_LEVEL": "warning", **env}
        full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with self.log_path.open("ab") as handle:
            self.process = subprocess.Popen([DROPNET, "serve"], env=full_env, stdout=handle,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.client = httpx.Client(base_url=self.url, timeout=60)

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                response = self.client.get("/readyz")
                if response.status_code == 200:
                    return response.json()
            time.sleep(0.1)
        raise RuntimeError(f"server not ready:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def serving(url: str, directory: Path, **env: str) -> Iterator[Server]:
    server = Server(url, directory, **env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


# -- load generation (a separate process) ----------------------------------------------------

@dataclass
class LoadResult:
    requests: int
    seconds: float
    non_2xx: int
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


WRK_SCRIPT = """
local f = assert(io.open(os.getenv("BENCH_BODY_FILE") or "/dev/null", "rb"))
local body = f:read("*a")
f:close()
wrk.method = os.getenv("BENCH_METHOD") or "GET"
if #body > 0 then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"requests":%d,"duration_us":%d,"non_2xx":%d,"errors":%d,'
    .. '"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def load_test(url: str, *, method: str = "GET", body: bytes = b"", seconds: float = 10.0,
              connections: int = 8, workdir: Path) -> LoadResult:
    """Keep `connections` requests in flight for `seconds` from another process."""
    body_file = workdir / "load-body.json"
    body_file.write_bytes(body)
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file), "BENCH_METHOD": method}
    if shutil.which("wrk"):
        script = workdir / "load.lua"
        script.write_text(WRK_SCRIPT)
        command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
                   "-s", str(script), url]
    else:
        command = [sys.executable, __file__, "load-client", url, str(seconds), str(connections)]
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True,
                            timeout=seconds + 60).stdout
    line = next(x for x in output.splitlines() if x.startswith("BENCH-RESULT "))
    data = json.loads(line.removeprefix("BENCH-RESULT "))
    return LoadResult(data["requests"], data["duration_us"] / 1e6, data["non_2xx"],
                      data["errors"], data["p50_us"] / 1000, data["p99_us"] / 1000)


def load_client(url: str, seconds: float, connections: int) -> None:
    """The fallback load generator: raw HTTP/1.1 keep-alive connections on asyncio."""
    target = httpx.URL(url)
    body = Path(os.environ["BENCH_BODY_FILE"]).read_bytes()
    method = os.environ.get("BENCH_METHOD", "GET")
    head = (f"{method} {target.raw_path.decode()} HTTP/1.1\r\nHost: {target.host}\r\n"
            f"Content-Length: {len(body)}\r\nContent-Type: application/json\r\n\r\n").encode()
    request = head + body
    latencies: list[float] = []
    counts = {"non_2xx": 0, "errors": 0}

    async def connection(deadline: float) -> None:
        reader, writer = await asyncio.open_connection(target.host, target.port)
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if not status_line.split()[1].startswith(b"2"):
                counts["non_2xx"] += 1
        writer.close()

    async def main() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(connection(start + seconds) for _ in range(connections)))
        return time.perf_counter() - start

    elapsed = asyncio.run(main())
    print("BENCH-RESULT " + json.dumps({
        "requests": len(latencies), "duration_us": int(elapsed * 1e6), **counts,
        "p50_us": int(percentile(latencies, 50) * 1e6),
        "p99_us": int(percentile(latencies, 99) * 1e6)}))


# -- 1. metric logging overhead --------------------------------------------------------------

def bench_logging(runs: int, workdir: Path) -> list[Measurement]:
    from threadpoolctl import threadpool_limits

    spec = mlp_spec([64, 64], iterations=LOGGING_ITERATIONS, eval_every=1000)
    accepted = JobSpec.model_validate(spec)
    settings_template = Settings(workers=os.cpu_count() or 1, _env_file=None)
    limits = threadpool_limits(settings_template.effective_blas_threads())  # as worker_main

    with Database("sqlite://").read() as session:
        data = job_data.load(session, accepted.data, input_shape=accepted.model.input_shape,
                             dtype=accepted.model.dtype)

    def engine_alone() -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        network = build_network(accepted.engine_layers(), accepted.model.input_shape,
                                seed=accepted.training.seed, dtype=accepted.model.dtype)
        trainer = Trainer(network, data, TrainingConfig.from_dict(accepted.engine_training()))
        trainer.run(on_metrics=lambda records: None,
                    flush_seconds=settings_template.heartbeat_seconds,
                    flush_every=settings_template.checkpoint_every_iterations)
        return time.perf_counter() - start, time.process_time() - cpu

    def with_service(index: int) -> tuple[float, float, int]:
        directory = workdir / f"logging-{index}"
        directory.mkdir()
        url, db = new_database(directory)
        settings = bench_settings(url)
        (job_id,) = queue_jobs(db, settings, [spec])
        start, cpu = time.perf_counter(), time.process_time()
        result = JobRunner(db, settings, WORKER).run(job_id)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        if result is None or result.status != job_rows.SUCCEEDED:
            raise RuntimeError(f"logging job did not succeed: {result}")
        with db.read() as session:
            rows = sum(s.count for s in metric_rows.summaries(session, job_id))
        db.dispose()
        shutil.rmtree(directory)
        return elapsed, cpu, rows

    engine, service, rows = [], [], 0
    try:
        engine_alone()  # warm-up: imports, dataset cache, allocator
        for index in range(runs):
            # Alternate which goes first, so that drift in a shared machine's load favours
            # neither; a pause before each run lets the CPU settle.
            if index % 2 == 0:
                time.sleep(1)
                engine.append(engine_alone())
            time.sleep(1)
            *timing, rows = with_service(index)
            service.append(tuple(timing))
            if index % 2 == 1:
                time.sleep(1)
                engine.append(engine_alone())
            log(f"logging run {index + 1}/{runs}: engine {engine[-1][0]:.2f} s, "
                f"JobRunner+SQLite {service[-1][0]:.2f} s ({rows} rows)")
    finally:
        del limits

    def overhead(column: int) -> list[float]:
        return [(s[column] / e[column] - 1) * 100 for e, s in zip(engine, service, strict=True)]

    wall = overhead(0)
    return [Measurement(
        "logging overhead (JobRunner+SQLite vs engine)", statistics.median(wall), "%", 10,
        "lower",
        f"median of {runs} paired runs (wall time); engine "
        f"{statistics.median(e[0] for e in engine):.2f} s, JobRunner "
        f"{statistics.median(s[0] for s in service):.2f} s; {LOGGING_ITERATIONS} "
        f"iterations, {rows} rows/run; per run % " + ", ".join(f"{x:.1f}" for x in wall)
        + f"; CPU time overhead {statistics.median(overhead(1)):.1f} %")]


# -- 2. history reads ------------------------------------------------------------------------

def fill_history(db: Database, settings: Settings, points: int) -> tuple[str, float]:
    """A job with `points` batch_loss points (a noisy decaying curve), inserted in batches."""
    (job_id,) = queue_jobs(db, settings, [mlp_spec([32], iterations=points)])
    rng = np.random.default_rng(0)
    steps = np.arange(1, points + 1)
    values = 2.3 * np.exp(-steps / (points / 5)) + 0.1 + 0.05 * rng.standard_normal(points)
    stamps = 1.7e9 + steps * 1e-3
    start = time.perf_counter()
    with db.write() as session:
        series = metric_rows.series_ids(session, job_id, ["batch_loss"])["batch_loss"]
    chunk = 50_000
    for offset in range(0, points, chunk):
        rows = [(series, int(s), float(v), float(t)) for s, v, t in
                zip(steps[offset:offset + chunk], values[offset:offset + chunk],
                    stamps[offset:offset + chunk], strict=True)]
        with db.write() as session:
            metric_rows.insert_points(session, rows)
    return job_id, time.perf_counter() - start


def timed_get(client: httpx.Client, path: str, params: dict[str, Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    response = client.get(path, params=params)
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    return elapsed * 1000, response.json()


def bench_history(runs: int, workdir: Path) -> list[Measurement]:
    url, db = new_database(workdir)
    settings = bench_settings(url)
    job_id, fill_seconds = fill_history(db, settings, HISTORY_POINTS)
    log(f"history: {HISTORY_POINTS:,} points inserted in {fill_seconds:.1f} s")
    db.dispose()
    path = f"/v1/jobs/{job_id}/metrics/batch_loss"
    downsampled, pages = [], []
    with serving(url, workdir) as server:
        for _ in range(3):  # warm-up: connections, statement caches, page cache
            timed_get(server.client, path, {"max_points": 1000})
            timed_get(server.client, path, {"limit": 10_000})
        cursor = None
        for _ in range(runs):
            ms, body = timed_get(server.client, path, {"max_points": 1000})
            assert body["downsampled"] and 2 <= len(body["points"]) <= 1000, len(body["points"])
            assert body["points"][0]["step"] == 1
            assert body["points"][-1]["step"] == HISTORY_POINTS
            downsampled.append(ms)
            params: dict[str, Any] = {"limit": 10_000}
            if cursor:
                params["cursor"] = cursor
            ms, body = timed_get(server.client, path, params)
            assert len(body["points"]) == 10_000
            cursor = body["next_cursor"]
            pages.append(ms)
        log(f"history: max_points=1000 -> {len(downsampled)} requests, limit=10000 -> "
            f"{len(pages)} pages")
    return [
        Measurement("history: 1M points -> max_points=1000", statistics.median(downsampled),
                    "ms", 150, "lower",
                    f"{runs} requests, p90 {percentile(downsampled, 90):.1f} ms; fill "
                    f"{HISTORY_POINTS / fill_seconds:,.0f} points/s via insert_points"),
        Measurement("history: page of limit=10000", statistics.median(pages), "ms", 100,
                    "lower", f"{runs} consecutive pages (cursor), p90 "
                             f"{percentile(pages, 90):.1f} ms"),
    ]


# -- 3. predictions --------------------------------------------------------------------------

DIGIT_ZERO = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0,
              4, 12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14,
              5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]


def bench_predict(runs: int, workdir: Path, seconds: float) -> list[Measurement]:
    url, db = new_database(workdir)
    settings = bench_settings(url)
    (job_id,) = train_jobs(db, settings, [mlp_spec([256], iterations=300)])
    db.dispose()
    body = json.dumps({"inputs": [[v / 16 for v in DIGIT_ZERO]]}).encode()
    health, predict = [], []
    with serving(url, workdir) as server:
        response = server.client.post(f"/v1/jobs/{job_id}/predict", content=body,
                                      headers={"Content-Type": "application/json"})
        response.raise_for_status()
        load_test(f"{server.url}/healthz", seconds=2, workdir=workdir)  # warm-up
        for index in range(runs):
            health.append(load_test(f"{server.url}/healthz", seconds=seconds, workdir=workdir))
            predict.append(load_test(f"{server.url}/v1/jobs/{job_id}/predict", method="POST",
                                     body=body, seconds=seconds, workdir=workdir))
            log(f"predict run {index + 1}/{runs}: healthz {health[-1].rps:,.0f} req/s, "
                f"predict {predict[-1].rps:,.0f} req/s")
    failures = sum(r.non_2xx + r.errors for r in health + predict)
    if failures:
        raise RuntimeError(f"{failures} failed requests during the predict load test")
    ratios = [p.rps / h.rps * 100 for h, p in zip(health, predict, strict=True)]
    tool = "wrk -t1 -c8" if shutil.which("wrk") else "asyncio client, 8 connections"
    p50 = statistics.median(r.p50_ms for r in predict)
    p99 = statistics.median(r.p99_ms for r in predict)
    return [Measurement(
        "predict (batch 1) req/s vs /healthz", statistics.median(ratios), "%", 60, "higher",
        f"{runs} x {seconds:g} s each, {tool}; predict "
        f"{statistics.median(r.rps for r in predict):,.0f} req/s (p50 {p50:.2f} ms, "
        f"p99 {p99:.2f} ms), healthz "
        f"{statistics.median(r.rps for r in health):,.0f} req/s (p50 "
        f"{statistics.median(r.p50_ms for r in health):.2f} ms, p99 "
        f"{statistics.median(r.p99_ms for r in health):.2f} ms)")]


# -- 4. submissions --------------------------------------------------------------------------

def jobs_per_second(db: Database) -> list[int]:
    """Jobs created in each whole second of the run (first and last partial seconds dropped)."""
    with db.read() as session:
        stamps = sorted(t.timestamp() for t in session.scalars(select(Job.created_at)))
    if len(stamps) < 2:
        return []
    counts = np.bincount((np.asarray(stamps) - stamps[0]).astype(int))
    return [int(c) for c in counts[1:-1]]


def bench_submit(runs: int, workdir: Path, seconds: float) -> list[Measurement]:
    spec = mlp_spec([256], iterations=2000, batch_size=64)
    body = json.dumps(spec).encode()
    rates, slowest, latencies = [], [], []
    for index in range(runs):
        directory = workdir / f"submit-{index}"
        directory.mkdir()
        url, db = new_database(directory)
        with serving(url, directory, DROPNET_MAX_QUEUED_JOBS_PER_OWNER="10000000") as server:
            server.client.post("/v1/jobs", content=body,
                               headers={"Content-Type": "application/json"}).raise_for_status()
            result = load_test(f"{server.url}/v1/jobs", method="POST", body=body,
                               seconds=seconds, workdir=directory)
        with db.read() as session:
            accepted = session.scalar(select(func.count()).select_from(Job)) - 1
        per_second = jobs_per_second(db)
        db.dispose()
        if result.non_2xx or result.errors:
            raise RuntimeError(f"{result.non_2xx} non-2xx responses, {result.errors} errors")
        rates.append(accepted / result.seconds)
        slowest.append(min(per_second))
        latencies.append(result)
        log(f"submit run {index + 1}/{runs}: {accepted} jobs accepted in {result.seconds:.1f} s "
            f"({rates[-1]:,.0f}/s; slowest whole second {slowest[-1]})")
        shutil.rmtree(directory)
    return [Measurement(
        "job submission (201 Created)", statistics.median(rates), "jobs/s", 200, "higher",
        f"{runs} runs x {seconds:g} s, fresh database each; slowest whole second "
        f"{statistics.median(slowest):,.0f} jobs (median over runs); p50 "
        f"{statistics.median(r.p50_ms for r in latencies):.1f} ms, p99 "
        f"{statistics.median(r.p99_ms for r in latencies):.1f} ms")]


# -- 5. memory -------------------------------------------------------------------------------

@dataclass
class CacheRun:
    budget: int
    baseline: float
    samples: list[tuple[int, float]] = field(default_factory=list)
    hit_ms: float = 0.0
    miss_ms: float = 0.0


def predict_sweep(server: Server, job_ids: list[str], budget: int) -> CacheRun:
    """Predict once on each job in turn, sampling the server's RSS every 10 models."""
    body = json.dumps({"inputs": [[v / 16 for v in DIGIT_ZERO]]})
    pid = server.process.pid

    def predict(job_id: str) -> float:
        start = time.perf_counter()
        server.client.post(f"/v1/jobs/{job_id}/predict", content=body,
                           headers={"Content-Type": "application/json"}).raise_for_status()
        return (time.perf_counter() - start) * 1000

    for _ in range(20):  # warm-up on one job: code paths, allocator, connections
        predict(job_ids[0])
    run = CacheRun(budget, rss_mib(pid))
    for index, job_id in enumerate(job_ids, start=1):
        predict(job_id)
        if index % 10 == 0:
            run.samples.append((index, rss_mib(pid)))
    # The most recent model is cached in any budget; the first one is evicted by a small one.
    run.hit_ms = statistics.median(predict(job_ids[-1]) for _ in range(9))
    run.miss_ms = statistics.median(predict(job_ids[i]) for i in range(9))
    return run


def worker_rss(workdir: Path) -> list[float]:
    """One local worker's RSS after each of WORKER_JOBS jobs, submitted one at a time."""
    directory = workdir / "worker"
    directory.mkdir()
    url, db = new_database(directory)
    db.dispose()
    sizes = []
    with serving(url, directory, DROPNET_WORKERS="1") as server:
        (pid,) = server.client.get("/readyz").json()["checks"]["workers"]["pids"]
        for index in range(WORKER_JOBS):
            hidden = [[256], [128, 64], [512]][index % 3]
            spec = mlp_spec(hidden, iterations=400, batch_size=64, seed=index, eval_every=100)
            job = server.client.post("/v1/jobs", json=spec)
            job.raise_for_status()
            job_id = job.json()["id"]
            deadline = time.monotonic() + 120
            while server.client.get(f"/v1/jobs/{job_id}").json()["status"] != "succeeded":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker job {job_id} did not succeed")
                time.sleep(0.02)
            sizes.append(rss_mib(pid))
    return sizes


def bench_memory(workdir: Path) -> list[Measurement]:
    url, db = new_database(workdir)
    settings = bench_settings(url)
    spec = mlp_spec([512, 512], iterations=20)
    start = time.perf_counter()
    job_ids = train_jobs(db, settings, [{**spec, "training": {**spec["training"], "seed": i}}
                                        for i in range(MEMORY_MODELS)])
    log(f"memory: {MEMORY_MODELS} jobs trained in {time.perf_counter() - start:.1f} s")
    default_budget = Settings(_env_file=None).model_cache_bytes
    from service.engine.checkpoint import load_model
    from service.serving.cache import model_bytes
    from service.store import artifacts

    with db.read() as session:
        network, _ = load_model(artifacts.get_model(session, job_ids[0]).data)
    per_model = model_bytes(network)
    db.dispose()
    small_budget = SMALL_CACHE_MODELS * per_model + per_model // 2
    runs = []
    for budget in (default_budget, small_budget):
        with serving(url, workdir, DROPNET_MODEL_CACHE_BYTES=str(budget)) as server:
            runs.append(predict_sweep(server, job_ids, budget))
        log(f"memory: budget {budget / MiB:.0f} MiB: RSS {runs[-1].baseline:.0f} -> "
            + ", ".join(f"{n}: {r:.0f}" for n, r in runs[-1].samples) + " MiB")
    sizes = worker_rss(workdir)
    log("memory: worker RSS after each job (MiB): " + ", ".join(f"{s:.0f}" for s in sizes))

    default, small = runs
    peak = max(r for _, r in default.samples)
    results = [Measurement(
        f"API RSS, {MEMORY_MODELS} models cached (default budget)", peak, "MiB",
        default.budget / MiB, "lower",
        f"RSS {default.baseline:.0f} MiB after one model, every 10 models: "
        + " ".join(f"{r:.0f}" for _, r in default.samples)
        + f"; {per_model / MiB:.2f} MiB accounted per model, so all fit; predict on the newest "
          f"{default.hit_ms:.1f} ms, the oldest {default.miss_ms:.1f} ms")]
    full = dict(small.samples)[2 * SMALL_CACHE_MODELS]
    results.append(Measurement(
        f"API RSS growth once a {small.budget / MiB:.0f} MiB cache is full "
        f"(models {2 * SMALL_CACHE_MODELS + 1}-{MEMORY_MODELS})",
        max(r for _, r in small.samples) - full, "MiB", per_model / MiB, "lower",
        f"RSS {small.baseline:.0f} MiB after one model, every 10 models: "
        + " ".join(f"{r:.0f}" for _, r in small.samples)
        + f" ({SMALL_CACHE_MODELS} models fit); predict on the newest {small.hit_ms:.1f} ms "
          f"(cached), the oldest {small.miss_ms:.1f} ms (evicted, reloaded)"))
    settled = sizes[WORKER_JOBS // 3:]
    growth = statistics.median(settled[-5:]) - statistics.median(settled[:5])
    results.append(Measurement(
        f"worker RSS growth, jobs {WORKER_JOBS // 3 + 1}-{WORKER_JOBS}", growth, "MiB", 5,
        "lower", f"one worker, {WORKER_JOBS} jobs; RSS after each (MiB): "
                 + " ".join(f"{s:.0f}" for s in sizes)))
    return results


# -- main ------------------------------------------------------------------------------------

BENCHMARKS = ("logging", "history", "predict", "submit", "memory")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["load-client"]:
        load_client(argv[1], float(argv[2]), int(argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("which", nargs="?", default="all", choices=("all", *BENCHMARKS))
    parser.add_argument("--runs", type=int, help="repetitions (defaults: logging 8, history "
                                                 "30, predict 3, submit 3)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="duration of each load test (default 10)")
    args = parser.parse_args(argv)
    chosen = BENCHMARKS if args.which == "all" else (args.which,)
    runs: dict[str, Callable[[Path], list[Measurement]]] = {
        "logging": lambda d: bench_logging(args.runs or 8, d),
        "history": lambda d: bench_history(args.runs or 30, d),
        "predict": lambda d: bench_predict(args.runs or 3, d, args.seconds),
        "submit": lambda d: bench_submit(args.runs or 3, d, args.seconds),
        "memory": bench_memory,
    }
    results: list[Measurement] = []
    started = time.perf_counter()
    for name in chosen:
        with tempfile.TemporaryDirectory(prefix=f"dropnet-bench-{name}-") as directory:
            log(f"{name} ...")
            results += runs[name](Path(directory))
    print(f"\ndropnet service benchmarks ({os.cpu_count()} CPUs, Python "
          f"{sys.version.split()[0]}, {time.perf_counter() - started:.0f} s)\n")
    print_table(results)
    missed = [m.name for m in results if not m.passed]
    if missed:
        print(f"\nMISSED: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
