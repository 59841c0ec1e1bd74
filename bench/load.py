"""Bounded load test: N concurrent clients (a separate process, real HTTP on loopback) submit
jobs, poll them, read metrics and predict for a fixed time while the workers train.

    python bench/load.py [--seconds 60] [--clients 50] [--workers 2] [--database-url URL]

Checks: zero 5xx, zero lost or duplicated jobs (every 201 is a job the server still lists,
exactly once). Prints p50/p99 latency per endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

DROPNET = str(Path(sys.executable).parent / "dropnet")


def small_job(seed: int, iterations: int) -> dict:
    return {"name": f"load-{seed}",
            "model": {"input_shape": [64],
                      "layers": [{"type": "dense", "units": 32, "activation": "relu"},
                                 {"type": "dropout", "rate": 0.5},
                                 {"type": "dense", "units": 10, "activation": "softmax"}]},
            "data": {"dataset": "digits"},
            "training": {"iterations": iterations, "batch_size": 32, "seed": seed,
                         "eval_every": max(1, iterations // 5),
                         "optimizer": {"type": "sgd", "learning_rate": 0.1}}}


async def client_loop(client: httpx.AsyncClient, deadline: float, model_job: str,
                      sample: list[float], results: dict, rng: random.Random) -> None:
    mine: list[str] = []
    while time.monotonic() < deadline:
        roll = rng.random()
        if roll < 0.2 or not mine:
            label, request = "POST /v1/jobs", client.post(
                "/v1/jobs", json=small_job(rng.randrange(10**6), 200),
                headers={"Idempotency-Key": f"{os.getpid()}-{rng.getrandbits(64)}"})
        elif roll < 0.45:
            label = "GET /v1/jobs/{id}"
            request = client.get(f"/v1/jobs/{rng.choice(mine)}")
        elif roll < 0.55:
            label, request = "GET /v1/jobs", client.get("/v1/jobs", params={"limit": 20})
        elif roll < 0.75:
            label = "GET /v1/jobs/{id}/metrics/{key}"
            request = client.get(f"/v1/jobs/{model_job}/metrics/batch_loss",
                                 params={"max_points": 200})
        else:
            label = "POST /v1/jobs/{id}/predict"
            request = client.post(f"/v1/jobs/{model_job}/predict", json={"inputs": [sample]})
        start = time.perf_counter()
        try:
            response = await request
            status = response.status_code
        except httpx.HTTPError as error:
            status = f"transport:{type(error).__name__}"
            response = None
        results["latency"][label].append(time.perf_counter() - start)
        results["status"][label][str(status)] += 1
        if label == "POST /v1/jobs" and response is not None and status == 201:
            job_id = response.json()["id"]
            mine.append(job_id)
            results["created"].append(job_id)


async def run_clients(url: str, seconds: float, clients: int, model_job: str,
                      sample: list[float]) -> dict:
    results: dict = {"latency": defaultdict(list),
                     "status": defaultdict(lambda: defaultdict(int)), "created": []}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(client_loop(client, deadline, model_job, sample, results,
                                           random.Random(n)) for n in range(clients)))
    return results


def wait_until_ready(http: httpx.Client, log: Path, seconds: float) -> None:
    """Polls GET /readyz until it answers 200; raises with the server's log after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if http.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server was not ready after {seconds:.0f} s:\n"
                               + log.read_text()[-4000:])
        time.sleep(0.1)


def train_model_job(http: httpx.Client) -> str:
    """Submits the small 500-iteration job the clients predict with; returns its id once it
    has succeeded."""
    model_job = http.post("/v1/jobs", json=small_job(0, 500)).json()["id"]
    while http.get(f"/v1/jobs/{model_job}").json()["status"] != "succeeded":
        time.sleep(0.1)
    return model_job


def client_main(url: str, seconds: float, clients: int, model_job: str, out: str) -> None:
    sample = json.loads(Path(out + ".sample").read_text())
    results = asyncio.run(run_clients(url, seconds, clients, model_job, sample))
    Path(out).write_text(json.dumps(results))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url")
    parser.add_argument("--client", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        url, model_job, out, clients = args.client
        client_main(url, args.seconds, int(clients), model_job, out)
        return

    with tempfile.TemporaryDirectory() as tmp:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {**os.environ, "DROPNET_PORT": str(port), "DROPNET_WORKERS": str(args.workers),
               "DROPNET_DATABASE_URL": args.database_url or f"sqlite:///{tmp}/load.db",
               "DROPNET_MAX_QUEUED_JOBS_PER_OWNER": "1000000", "DROPNET_LOG_LEVEL": "warning"}
        log = Path(tmp) / "serve.log"
        server = subprocess.Popen([DROPNET, "serve"], env=env, stdout=log.open("wb"),
                                  stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        http = httpx.Client(base_url=url, timeout=60)
        try:
            wait_until_ready(http, log, seconds=60)
            model_job = train_model_job(http)
            before = {j["id"] for j in _all_jobs(http)}
            out = str(Path(tmp) / "results.json")
            Path(out + ".sample").write_text(json.dumps([0.5] * 64))
            subprocess.run([sys.executable, __file__, "--seconds", str(args.seconds),
                            "--client", url, model_job, out, str(args.clients)], check=True)
            results = json.loads(Path(out).read_text())
            listed = [j["id"] for j in _all_jobs(http) if j["id"] not in before]
            server_errors = log.read_text().count("Traceback")
        finally:
            http.close()
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)

    created = results["created"]
    five_xx = sum(n for codes in results["status"].values() for code, n in codes.items()
                  if code.startswith("5") or code.startswith("transport"))
    total = sum(len(v) for v in results["latency"].values())
    print(f"{args.clients} clients for {args.seconds:.0f} s against `dropnet serve` with "
          f"{args.workers} local workers: {total} requests ({total / args.seconds:.0f}/s)")
    print(f"{'endpoint':34s} {'requests':>9s} {'p50 ms':>8s} {'p99 ms':>8s}  statuses")
    for label, values in sorted(results["latency"].items()):
        codes = dict(results["status"][label])
        print(f"{label:34s} {len(values):9d} {statistics.median(values) * 1e3:8.1f} "
              f"{percentile(values, 0.99) * 1e3:8.1f}  {codes}")
    lost = set(created) - set(listed)
    duplicated = len(listed) - len(set(listed))
    unexpected = set(listed) - set(created)
    print(f"jobs created: {len(created)}; listed afterwards: {len(listed)}; lost: {len(lost)}; "
          f"duplicated: {duplicated}; unexpected: {len(unexpected)}")
    print(f"5xx or transport errors: {five_xx}; server tracebacks: {server_errors}")
    sys.exit(1 if five_xx or lost or duplicated or unexpected or server_errors else 0)


def _all_jobs(http: httpx.Client) -> list[dict]:
    jobs, cursor = [], None
    while True:
        params = {"limit": 10000, **({"cursor": cursor} if cursor else {})}
        body = http.get("/v1/jobs", params=params).json()
        jobs += body["data"]
        if (cursor := body["next_cursor"]) is None:
            return jobs


if __name__ == "__main__":
    main()
