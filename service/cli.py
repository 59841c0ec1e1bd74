"""The `dropnet` command: serve, worker, migrate, keys (server commands); submit, jobs, logs,
predict (client commands, in service.client.cli)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import uuid
from collections.abc import Sequence
from typing import Any

from .client.cli import add_commands as add_client_commands
from .config import Settings


def _settings(args: argparse.Namespace, names: Sequence[str]) -> Settings:
    """Settings from the environment, with the options given on the command line on top."""
    overrides: dict[str, Any] = {name: getattr(args, name) for name in names
                                 if getattr(args, name, None) is not None}
    return Settings(**overrides)


def _prometheus_multiprocess_dir() -> None:
    """Give this process and the workers it spawns one fresh directory for metric files
    (before prometheus_client is imported), unless the operator chose one."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="dropnet-metrics-")


def serve(args: argparse.Namespace) -> None:
    _prometheus_multiprocess_dir()
    import uvicorn

    from .api.app import create_app
    from .logs import configure_logging
    from .store.schema import upgrade

    settings = _settings(args, ("host", "port", "workers", "database_url", "executor"))
    configure_logging(settings)
    upgrade(settings.database_url)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the handler
    # that was installed before it: make that a clean exit instead of death by signal.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level=settings.log_level, access_log=False,
                timeout_graceful_shutdown=60)


def migrate(args: argparse.Namespace) -> None:
    from .logs import configure_logging
    from .store.schema import printable_url, upgrade

    settings = _settings(args, ("database_url",))
    configure_logging(settings)
    upgrade(settings.database_url)
    print(f"database at head: {printable_url(settings.database_url)}")


def worker(args: argparse.Namespace) -> None:
    _prometheus_multiprocess_dir()
    from .workers.celery_worker import run_worker

    settings = _settings(args, ("database_url", "broker_url"))
    run_worker(settings, concurrency=args.concurrency)


def keys(args: argparse.Namespace) -> None:
    from .auth import generate_key, hash_key
    from .store import api_keys as key_rows
    from .store.session import Database
    from .webhooks import owner_secrets

    settings = _settings(args, ("database_url",))
    db = Database(settings.database_url)
    with db.write() as session:
        if args.keys_command == "create":
            key = generate_key()
            record = key_rows.create(session, key_id=uuid.uuid4().hex, owner=args.owner,
                                     key_hash=hash_key(key), prefix=key[:8])
            secret = owner_secrets.own_secret(session, args.owner)
            print(f"id: {record.id}\nowner: {args.owner}\nkey: {key}\n"
                  "(shown once: store it now; only its hash is kept)\n"
                  f"webhook secret: {secret}\n"
                  f"(verifies this owner's webhooks; `dropnet keys secret --owner "
                  f"{args.owner}` shows it again)")
        elif args.keys_command == "secret":
            secret = (owner_secrets.rotate(session, args.owner) if args.rotate
                      else owner_secrets.own_secret(session, args.owner))
            print(secret)
        elif args.keys_command == "revoke":
            revoked = key_rows.revoke(session, args.id)
            if revoked is None:
                sys.exit(f"no API key with id {args.id}")
            print(f"revoked {args.id} (owner {revoked.owner})")
        else:
            for record in key_rows.all_keys(session):
                state = "revoked" if record.revoked_at else "active"
                print(f"{record.id}  {record.owner:20s} {record.prefix}...  {state}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dropnet", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    db_option: dict[str, Any] = {"dest": "database_url",
                                 "help": "SQLAlchemy URL (env DROPNET_DATABASE_URL)"}

    p = commands.add_parser("serve", help="run the API and local training workers")
    p.add_argument("--host", help="listen address (env DROPNET_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (env DROPNET_PORT, default 8000)")
    p.add_argument("--workers", type=int,
                   help="training worker processes (env DROPNET_WORKERS, default: CPU cores)")
    p.add_argument("--executor", choices=("local", "celery"), help="env DROPNET_EXECUTOR")
    p.add_argument("--database-url", **db_option)
    p.set_defaults(func=serve)

    p = commands.add_parser("worker", help="run a Celery training worker")
    p.add_argument("--concurrency", type=int, default=None,
                   help="training processes (default: CPU cores)")
    p.add_argument("--broker-url", dest="broker_url", help="env DROPNET_BROKER_URL")
    p.add_argument("--database-url", **db_option)
    p.set_defaults(func=worker)

    p = commands.add_parser("migrate", help="upgrade the database schema to head")
    p.add_argument("--database-url", **db_option)
    p.set_defaults(func=migrate)

    p = commands.add_parser("keys", help="manage API keys")
    p.add_argument("--database-url", **db_option)
    key_commands = p.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key for an owner")
    create.add_argument("--owner", required=True)
    revoke = key_commands.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id")
    key_commands.add_parser("list", help="list keys (ids, owners, prefixes)")
    secret = key_commands.add_parser(
        "secret", help="print the secret that signs an owner's webhooks (created if none)")
    secret.add_argument("--owner", required=True, help='the owner ("" on an open server)')
    secret.add_argument("--rotate", action="store_true",
                        help="replace it with a new one (the old one stops signing at once)")
    p.set_defaults(func=keys)

    add_client_commands(commands)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
