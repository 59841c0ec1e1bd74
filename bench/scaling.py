"""Scale-out throughput: 16 CPU-bound jobs with 1 worker process versus 2, on the local
executor and on Celery, BLAS pinned to one thread per worker; and the time from submission to
the start of training (what Celery adds per job).

    python bench/scaling.py [local|celery|all] [--jobs 16] [--iterations 1500]

Needs PostgreSQL (DROPNET_BENCH_POSTGRES_URL, default postgresql+psycopg://postgres@127.0.0.1/test)
and Redis (DROPNET_BENCH_REDIS_URL, default redis://127.0.0.1:6379/14) for the Celery runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

DROPNET = str(Path(sys.executable).parent / "dropnet")
POSTGRES = os.environ.get("DROPNET_BENCH_POSTGRES_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("DROPNET_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def job(iterations: int, seed: int) -> dict:
    return {"name": f"bench-{seed}",
            "model": {"input_shape": [64],
                      "layers": [{"type": "dense", "units": 256, "activation": "relu"},
                                 {"type": "dropout", "rate": 0.5},
                                 {"type": "dense", "units": 10, "activation": "softmax"}]},
            "data": {"dataset": "digits"},
            "training": {"iterations": iterations, "batch_size": 64, "seed": seed,
                         "eval_every": 100,
                         "optimizer": {"type": "sgd", "learning_rate": 0.1, "momentum": 0.9}}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([DROPNET, *args], env={**os.environ, **env},
                            stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_ready(client: httpx.Client, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server not ready")


def wait_done(client: httpx.Client, ids: list[str], timeout: float = 1800) -> list[dict]:
    """Poll lightly (one list request every 0.2 s): the API shares the cores with the
    workers, and a busy poller would slow down what it measures."""
    deadline = time.monotonic() + timeout
    pending = set(ids)
    while pending and time.monotonic() < deadline:
        time.sleep(0.2)
        for status in ("succeeded", "failed"):
            body = client.get("/v1/jobs", params={"status": status, "limit": 1000}).json()
            pending -= {job["id"] for job in body["data"]}
    return [client.get(f"/v1/jobs/{job_id}").json() for job_id in ids]


def parse(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp)


def run_cluster(mode: str, workers: int, jobs: int, iterations: int, tmp: Path) -> dict:
    """Wall time of `jobs` jobs and each job's submit-to-start latency."""
    port = free_port()
    env = {"DROPNET_PORT": str(port), "DROPNET_BLAS_THREADS": "1",
           "DROPNET_MAX_QUEUED_JOBS_PER_OWNER": "100000", "DROPNET_LOG_LEVEL": "warning"}
    processes = []
    database = None
    if mode == "local":
        env |= {"DROPNET_DATABASE_URL": f"sqlite:///{tmp / f'local-{workers}.db'}",
                "DROPNET_WORKERS": str(workers)}
    else:
        import redis
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        redis.Redis.from_url(REDIS).flushdb()
        database = f"dropnet_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{database}"'))
        url = make_url(POSTGRES).set(database=database).render_as_string(hide_password=False)
        env |= {"DROPNET_DATABASE_URL": url, "DROPNET_EXECUTOR": "celery",
                "DROPNET_WORKERS": "0", "DROPNET_BROKER_URL": REDIS}
        subprocess.run([DROPNET, "migrate"], env={**os.environ, **env}, check=True,
                       capture_output=True)
        processes.append(start(["worker", "--concurrency", str(workers)], env,
                               tmp / f"worker-{workers}.log"))
    processes.append(start(["serve"], env, tmp / f"serve-{mode}-{workers}.log"))
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    try:
        wait_ready(client)
        # Latency: one job at a time on an idle cluster.
        latencies = []
        for n in range(5):
            created = client.post("/v1/jobs", json=job(100, 1000 + n)).json()
            done = created
            while done["status"] not in ("succeeded", "failed"):
                time.sleep(0.02)
                done = client.get(f"/v1/jobs/{created['id']}").json()
            latencies.append((parse(done["started_at"]) - parse(done["created_at"]))
                             .total_seconds() * 1000)
        start_time = time.perf_counter()
        ids = [client.post("/v1/jobs", json=job(iterations, n)).json()["id"]
               for n in range(jobs)]
        results = wait_done(client, ids)
        elapsed = time.perf_counter() - start_time
        assert all(r["status"] == "succeeded" for r in results), [r["error"] for r in results]
        return {"seconds": elapsed, "latency_ms": statistics.median(latencies)}
    finally:
        client.close()
        for process in reversed(processes):
            stop(process)
        if database:
            from sqlalchemy import create_engine, text

            admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", default="all", choices=("local", "celery", "all"))
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=4000)
    args = parser.parse_args()
    modes = ("local", "celery") if args.mode == "all" else (args.mode,)
    failed = False
    print(f"{args.jobs} jobs x {args.iterations} iterations (digits MLP 64-256-10, batch 64), "
          f"BLAS threads 1 per worker, {os.cpu_count()} cores")
    print(f"{'executor':10s} {'1 worker s':>11s} {'2 workers s':>12s} {'speed-up':>9s} "
          f"{'target':>7s} {'submit->start ms':>17s}")
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            one = run_cluster(mode, 1, args.jobs, args.iterations, Path(tmp))
            two = run_cluster(mode, 2, args.jobs, args.iterations, Path(tmp))
            speedup = one["seconds"] / two["seconds"]
            ok = speedup >= 1.7
            failed |= not ok
            print(f"{mode:10s} {one['seconds']:11.2f} {two['seconds']:12.2f} {speedup:8.2f}x "
                  f"{'>=1.7x':>7s} {one['latency_ms']:17.1f}  {'ok' if ok else 'MISSED'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
