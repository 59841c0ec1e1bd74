"""Chaos soak: the load test (bench/load.py's clients) against a scaled-out dropnet while a
helper kills a random Celery consumer every 20-60 s and restarts PostgreSQL twice.

    python bench/chaos.py [--minutes 30] [--clients 20] [--workers 2] [--seed 0]

Everything runs on this machine, on loopback: a private PostgreSQL cluster and a private Redis
(tests/outages/servers.py, so the machine's own servers are never touched), one
`dropnet serve --executor celery` and `--workers` `dropnet worker` processes with one consumer
each. At the end every job the clients created is waited for and its batch_loss history read
back. Reports: jobs submitted and finished, lost (never finished, or missing from the list:
must be 0), duplicated or missing metric steps (must be 0), 5xx answers (503 during the database
restarts is the promised answer, any other 5xx is a bug) and p50/p99 latency per endpoint.
Exit status 1 when anything is lost or duplicated or a 5xx other than 503 was seen.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import _all_jobs, percentile, train_model_job, wait_until_ready  # noqa: E402
from tests.e2e.conftest import children, free_port  # noqa: E402
from tests.outages.servers import PostgresServer, RedisServer  # noqa: E402

DROPNET = str(Path(sys.executable).parent / "dropnet")
JOB_ITERATIONS = 200


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([DROPNET, *args], env=env, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)


class Chaos(threading.Thread):
    """Kills a random consumer every 20-60 s; restarts PostgreSQL at 1/3 and 2/3 of the run."""

    def __init__(self, workers: list[subprocess.Popen], postgres: PostgresServer,
                 seconds: float, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.workers, self.postgres, self.seconds, self.rng = workers, postgres, seconds, rng
        self.kills = 0
        self.restarts = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        restarts_at = [started + self.seconds / 3, started + 2 * self.seconds / 3]
        next_kill = started + self.rng.uniform(20, 60)
        while not self.stopping.wait(0.5):
            now = time.monotonic()
            if restarts_at and now >= restarts_at[0]:
                restarts_at.pop(0)
                self.postgres.restart()
                self.restarts += 1
                print(f"[{now - started:6.0f} s] PostgreSQL restarted", flush=True)
            if now >= next_kill:
                next_kill = now + self.rng.uniform(20, 60)
                consumers = [pid for w in self.workers for pid in children(w.pid)]
                if consumers:
                    victim = self.rng.choice(consumers)
                    try:
                        os.kill(victim, signal.SIGKILL)
                        self.kills += 1
                        print(f"[{now - started:6.0f} s] killed consumer {victim}", flush=True)
                    except ProcessLookupError:
                        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    seconds = args.minutes * 60

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        redis, postgres = RedisServer(tmp), PostgresServer()
        redis.start()
        postgres.start()
        postgres.create_database()
        port = free_port()
        env = {**os.environ, "DROPNET_DATABASE_URL": postgres.url,
               "DROPNET_BROKER_URL": redis.url, "DROPNET_EXECUTOR": "celery",
               "DROPNET_WORKERS": "0", "DROPNET_PORT": str(port), "DROPNET_HOST": "127.0.0.1",
               "DROPNET_LEASE_SECONDS": "10", "DROPNET_HEARTBEAT_SECONDS": "1",
               "DROPNET_POLL_SECONDS": "1", "DROPNET_BLAS_THREADS": "1",
               "DROPNET_MAX_QUEUED_JOBS_PER_OWNER": "1000000", "DROPNET_LOG_LEVEL": "warning"}
        server = start(["serve"], env, tmp / "serve.log")
        workers = [start(["worker", "--concurrency", "1"], env, tmp / f"worker-{n}.log")
                   for n in range(args.workers)]
        url = f"http://127.0.0.1:{port}"
        http = httpx.Client(base_url=url, timeout=60)
        try:
            wait_until_ready(http, tmp / "serve.log", seconds=120)
            model_job = train_model_job(http)
            chaos = Chaos(workers, postgres, seconds, random.Random(args.seed))
            chaos.start()
            out = str(tmp / "results.json")
            Path(out + ".sample").write_text(json.dumps([0.5] * 64))
            subprocess.run([sys.executable, str(ROOT / "bench" / "load.py"), "--seconds",
                            str(seconds), "--client", url, model_job, out, str(args.clients)],
                           check=True)
            chaos.stopping.set()
            chaos.join()
            results = json.loads(Path(out).read_text())
            created = results["created"]
            print(f"load over; waiting for {len(created)} jobs", flush=True)
            ended, steps_wrong = _settle(http, created)
            listed = [j["id"] for j in _all_jobs(http)]
        finally:
            http.close()
            for process in [server, *workers]:
                process.send_signal(signal.SIGTERM)
            for process in [server, *workers]:
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
            redis.stop()
            postgres.remove()

    five_xx: dict[str, int] = {}
    for codes in results["status"].values():
        for code, n in codes.items():
            if code.startswith(("5", "transport")):
                five_xx[code] = five_xx.get(code, 0) + n
    bad_5xx = sum(n for code, n in five_xx.items() if code != "503")
    total = sum(len(v) for v in results["latency"].values())
    lost = [job_id for job_id in created if ended.get(job_id) != "succeeded"
            or job_id not in set(listed)]
    print(f"\n{args.minutes:.0f} min, {args.clients} clients, {args.workers} Celery workers; "
          f"{chaos.kills} consumers killed, PostgreSQL restarted {chaos.restarts} times")
    print(f"{total} requests ({total / seconds:.0f}/s)")
    print(f"{'endpoint':34s} {'requests':>9s} {'p50 ms':>8s} {'p99 ms':>8s}  statuses")
    for label, values in sorted(results["latency"].items()):
        codes = dict(results["status"][label])
        print(f"{label:34s} {len(values):9d} {statistics.median(values) * 1e3:8.1f} "
              f"{percentile(values, 0.99) * 1e3:8.1f}  {codes}")
    print(f"jobs submitted: {len(created)}; finished: "
          f"{sum(s == 'succeeded' for s in ended.values())}; lost: {len(lost)}; "
          f"jobs with duplicated or missing metric steps: {len(steps_wrong)}")
    print(f"5xx answers: {five_xx or 0} (other than 503: {bad_5xx})")
    sys.exit(1 if lost or steps_wrong or bad_5xx else 0)


def _settle(http: httpx.Client, job_ids: list[str],
            stall_seconds: float = 300) -> tuple[dict[str, str], list[str]]:
    """Wait for every job to end, for as long as jobs keep ending: a job counts as lost when
    no job at all has ended for `stall_seconds` while it is still waiting (a backlog that
    drains slowly is not a loss; a queue that stops draining is). Returns (final status per
    ended job, jobs whose batch_loss steps are not exactly 1..iterations)."""
    ended: dict[str, str] = {}
    pending = list(job_ids)
    last_progress = time.monotonic()
    while pending and time.monotonic() - last_progress < stall_seconds:
        still = []
        for job_id in pending:
            status = http.get(f"/v1/jobs/{job_id}").json()["status"]
            if status in ("succeeded", "failed", "cancelled"):
                ended[job_id] = status
            else:
                still.append(job_id)
        if len(still) < len(pending):
            last_progress = time.monotonic()
            print(f"{len(still)} jobs still to finish", flush=True)
        pending = still
        if pending:
            time.sleep(2)
    wrong = []
    for job_id in job_ids:
        steps, cursor = [], None
        while True:
            params = {"limit": 10000, **({"cursor": cursor} if cursor else {})}
            body = http.get(f"/v1/jobs/{job_id}/metrics/batch_loss", params=params).json()
            steps += [p["step"] for p in body["points"]]
            if (cursor := body["next_cursor"]) is None:
                break
        if steps != list(range(1, JOB_ITERATIONS + 1)):
            wrong.append(job_id)
    return ended, wrong


if __name__ == "__main__":
    main()
