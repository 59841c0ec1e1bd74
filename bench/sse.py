"""Live events under load: STREAMS concurrent streams on one job while it trains.

    python bench/sse.py [--streams 200] [--iterations 6000] [--runs 1] [--database-url URL]

Starts a real `dropnet serve` (one local worker, SQLite in a temporary directory unless
--database-url names a PostgreSQL database), and for each run trains the same job twice:
without streams, and with STREAMS clients following `GET /v1/jobs/{id}/events?since=now`
(the clients live in a separate process: their CPU is not the API's, but they share this
machine's cores with the worker; their CPU is printed too). Each time a blocker job holds the
worker until the streams are connected, then is cancelled. Prints:

- training time (the job's finished_at - started_at) without and with the streams, and the
  slowdown;
- the API process's CPU (user + system, from /proc) over the measured job, as a share of one
  core, and its peak RSS;
- the delay from a metric row's commit to its event reaching a client, p50 and p99 over every
  (stream, metrics event): receipt time minus the timestamp of the event's last point. The
  worker commits right after recording that point, so this is commit-to-receipt plus the
  write itself (an upper bound). Client and server share this machine's clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

DROPNET = str(Path(sys.executable).parent / "dropnet")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def job_spec(iterations: int, name: str) -> dict[str, Any]:
    return {"name": name,
            "model": {"input_shape": [64], "layers": [
                {"type": "dense", "units": 64, "activation": "relu"},
                {"type": "dropout", "rate": 0.5},
                {"type": "dense", "units": 10, "activation": "softmax"}]},
            "data": {"dataset": "digits"},
            "training": {"iterations": iterations, "batch_size": 32, "seed": 0,
                         "eval_every": max(1, iterations // 20),
                         "optimizer": {"type": "sgd", "learning_rate": 0.05}}}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the clients (a separate process) ---------------------------------------------------------

async def follow(url: str, job_id: str, delays: list[float], connected: list[int]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=None) as client, client.stream(
            "GET", f"/v1/jobs/{job_id}/events", params={"since": "now"}) as response:
        connected.append(1)
        kind = ""
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:") and kind == "metrics":
                # The last point's timestamp, without parsing the whole event: the clients
                # share this machine's cores with the worker being measured.
                last = line.rindex('"timestamp":') + len('"timestamp":')
                delays.append(time.time() - float(line[last:].rstrip("}]")))
            elif line.startswith("data:") and kind == "end":
                return


def run_clients(url: str, job_id: str, streams: int, out: Path) -> None:
    delays: list[float] = []
    connected: list[int] = []

    async def main() -> None:
        tasks = [asyncio.create_task(follow(url, job_id, delays, connected))
                 for _ in range(streams)]
        while len(connected) < streams:
            await asyncio.sleep(0.05)
        Path(f"{out}.ready").write_text("1")
        await asyncio.gather(*tasks)

    asyncio.run(main())
    out.write_text(json.dumps(delays))
    Path(f"{out}.cpu").write_text(json.dumps(cpu_seconds(os.getpid())))


# -- the measurement ----------------------------------------------------------------------------

def wait(client: httpx.Client, job_id: str, statuses: tuple[str, ...]) -> dict[str, Any]:
    while (job := client.get(f"/v1/jobs/{job_id}").json())["status"] not in statuses:
        time.sleep(0.05)
    return job


def duration(job: dict[str, Any]) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(job["finished_at"])
            - datetime.fromisoformat(job["started_at"])).total_seconds()


def measure(client: httpx.Client, url: str, pid: int, iterations: int, streams: int,
            work: Path) -> dict[str, Any]:
    # A blocker holds the one worker until the streams are connected; then it is cancelled.
    blocker = client.post("/v1/jobs", json=job_spec(1_000_000, "blocker")).json()["id"]
    job_id = client.post("/v1/jobs", json=job_spec(iterations, "measured")).json()["id"]
    clients = None
    out = work / f"delays-{job_id}.json"
    if streams:
        clients = subprocess.Popen([sys.executable, __file__, "--clients", url, job_id,
                                    str(streams), str(out)])
        while not Path(f"{out}.ready").exists():
            assert clients.poll() is None, "the clients exited"
            time.sleep(0.05)
    client.post(f"/v1/jobs/{blocker}/cancel")
    wait(client, job_id, ("running", "succeeded", "failed"))
    cpu_start, peak, started = cpu_seconds(pid), rss_bytes(pid), time.monotonic()
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.2):
            peak = max(peak, rss_bytes(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    job = wait(client, job_id, ("succeeded", "failed", "cancelled"))
    cpu, elapsed = cpu_seconds(pid) - cpu_start, time.monotonic() - started
    stop.set()
    sampler.join()
    assert job["status"] == "succeeded", job
    delays: list[float] = []
    client_cpu = 0.0
    if clients is not None:
        assert clients.wait(120) == 0
        delays = json.loads(out.read_text())
        client_cpu = json.loads(Path(f"{out}.cpu").read_text())
    return {"training_seconds": duration(job), "api_cpu": cpu / elapsed, "api_rss": peak,
            "delays": delays, "client_cpu_seconds": client_cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--iterations", type=int, default=6000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--database-url")
    parser.add_argument("--clients", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.clients:
        url, job_id, streams, out = args.clients
        run_clients(url, job_id, int(streams), Path(out))
        return
    with tempfile.TemporaryDirectory() as work:
        port = free_port()
        env = {**os.environ, "DROPNET_PORT": str(port), "DROPNET_WORKERS": "1",
               "DROPNET_BLAS_THREADS": "1",
               "DROPNET_DATABASE_URL": args.database_url or f"sqlite:///{work}/bench.db"}
        log = open(Path(work) / "serve.log", "wb")  # noqa: SIM115 (closed below)
        server = subprocess.Popen([DROPNET, "serve"], env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, timeout=60) as client:
                while True:
                    try:
                        if client.get("/readyz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.1)
                results: dict[int, list[dict[str, Any]]] = {0: [], args.streams: []}
                for _ in range(args.runs):
                    for streams in results:
                        results[streams].append(measure(client, url, server.pid,
                                                        args.iterations, streams, Path(work)))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(60)
            log.close()
    report(results, args)


def report(results: dict[int, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    quiet, loaded = results[0], results[args.streams]
    base = statistics.median(r["training_seconds"] for r in quiet)
    with_streams = statistics.median(r["training_seconds"] for r in loaded)
    delays = sorted(d for r in loaded for d in r["delays"])
    backend = "postgresql" if args.database_url else "sqlite"
    print(f"{backend}: {args.iterations} iterations, {args.streams} streams, "
          f"{args.runs} run(s)")
    print(f"training: {base:.2f} s without streams, {with_streams:.2f} s with "
          f"({(with_streams / base - 1) * 100:+.1f} %)")
    for label, runs in (("without", quiet), ("with", loaded)):
        cpu = statistics.median(r["api_cpu"] for r in runs)
        rss = max(r["api_rss"] for r in runs)
        print(f"API process {label} streams: CPU {cpu * 100:.1f} % of a core, "
              f"peak RSS {rss / 1e6:.0f} MB")
    clients = statistics.median(r["client_cpu_seconds"] / r["training_seconds"] for r in loaded)
    print(f"the {args.streams} clients' process: CPU {clients * 100:.1f} % of a core")
    if delays:
        p50 = delays[len(delays) // 2]
        p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
        print(f"commit -> client delay over {len(delays)} metrics events: "
              f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")


if __name__ == "__main__":
    main()
