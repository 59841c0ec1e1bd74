"""How many webhook deliveries per second one sender sends, through dropnet's own path: the
outbox rows written by cancelling queued jobs that carry `notify`, claimed with a lease,
signed, POSTed to a receiver on loopback (answering 204) and recorded, on SQLite and PostgreSQL.

    python bench/webhooks.py [--deliveries 500] [--concurrency 1 4 16] [--backend sqlite postgres]

Also prints the median and 95th percentile from the commit of a job's end to the receiver
having the request (the sender polls every `webhook_poll_seconds`; here its loop is driven
without a pause, so this is the cost of the path itself).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.config import Settings
from service.jobs import lifecycle
from service.store import deliveries as delivery_rows
from service.store.models import Job, WebhookDelivery
from service.store.schema import upgrade
from service.store.session import Database
from service.webhooks.sender import DeliverySender
from tests.factories import add_queued_job, spec

POSTGRES = os.environ.get("DROPNET_BENCH_POSTGRES_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/test")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 resets connections under 16 concurrent senders


class Sink:
    """A loopback receiver answering 204, recording when each webhook-id arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                sink.arrived[self.headers["webhook-id"]] = time.monotonic()
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def database(backend: str) -> tuple[str, object]:
    """(url, cleanup) of a fresh database at head."""
    if backend == "sqlite":
        folder = tempfile.TemporaryDirectory()
        url = f"sqlite:///{folder.name}/bench.db"
        upgrade(url)
        return url, folder.cleanup
    name = f"dropnet_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    upgrade(url)

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def run(backend: str, deliveries: int, concurrency: int) -> None:
    url, cleanup = database(backend)
    sink = Sink()
    db = Database(url)
    settings = Settings(database_url=url, workers=0, webhook_allowed_hosts="127.0.0.1",
                        webhook_concurrency=concurrency, _env_file=None)
    job_spec = {**spec(iterations=20), "notify": {"url": sink.url}}
    with db.write() as session:
        ids = [add_queued_job(session, spec_=job_spec).id for _ in range(deliveries)]
    committed: dict[str, float] = {}
    with db.write() as session:
        for job_id in ids:
            lifecycle.cancel(session, session.get(Job, job_id))
    start = time.monotonic()
    with db.read() as session:
        for delivery in session.query(WebhookDelivery).all():
            committed[f"msg_{delivery.id}"] = start
    sender = DeliverySender(db, settings)
    while len(sink.arrived) < deliveries:
        if not sender.run_once():
            time.sleep(0.001)
    sender.wait_idle()
    elapsed = time.monotonic() - start
    with db.read() as session:
        assert delivery_rows.count_pending(session) == 0
    latencies = sorted(sink.arrived[key] - committed[key] for key in committed)
    print(f"{backend:8s} concurrency {concurrency:3d}: {deliveries / elapsed:8.1f} deliveries/s "
          f"({deliveries} in {elapsed:.2f} s); commit -> received median "
          f"{statistics.median(latencies) * 1000:.0f} ms, p95 "
          f"{latencies[int(0.95 * (len(latencies) - 1))] * 1000:.0f} ms (all queued at once)")
    sender.stop()
    db.dispose()
    sink.server.shutdown()
    cleanup()  # type: ignore[operator]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=500)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--backend", nargs="+", default=["sqlite", "postgres"])
    args = parser.parse_args()
    for backend in args.backend:
        for concurrency in args.concurrency:
            run(backend, args.deliveries, concurrency)


if __name__ == "__main__":
    main()
