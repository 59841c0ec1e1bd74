"""The database handle: engines, sessions and transaction boundaries for both backends.

SQLite runs in WAL mode with a busy timeout and foreign keys on. Every transaction that may
write begins with BEGIN IMMEDIATE, so it waits for the write lock up front (bounded by the busy
timeout) instead of failing with "database is locked" when it upgrades a read lock that another
writer invalidated. Read-only transactions stay deferred and never block writers.

Within a process, writers also queue on a lock before BEGIN IMMEDIATE, released once COMMIT or
ROLLBACK has run: SQLite's busy handler polls with sleeps of up to 100 ms, so threads left to it
sit idle long after the lock is free (concurrent API requests, a worker's metric writes and
heartbeat). Other processes still wait in the busy handler.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

_BEGIN_OPTION = "dropnet_sqlite_begin"


class Database:
    """Owns the engine; hands out sessions whose transaction the caller commits."""

    def __init__(self, url: str, *, busy_timeout_seconds: float = 30.0, echo: bool = False,
                 pool_size: int = 20) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, busy_timeout_seconds, echo, pool_size)
        else:
            self.engine = create_engine(url, echo=echo, pool_pre_ping=True, pool_size=pool_size,
                                        max_overflow=pool_size)
        write_engine = self.engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(write_engine, expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; rolled back at the end."""
        with _closing(self._read()) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session that may write: committed when the block ends, rolled back on error."""
        with self._write() as session, session.begin():
            yield session

    def write_session(self) -> AbstractContextManager[Session]:
        """A session that may write, for callers that manage the transaction themselves
        (`with db.write_session() as session: ... session.commit()`)."""
        return _closing(self._write())

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def _closing(session: Session) -> Iterator[Session]:
    """Yield `session`, then close it. A connection the database already dropped (a restart)
    cannot roll back what is left open: that is no error here, since the server discarded the
    transaction itself. Raising it would fail a request whose answer was already sent."""
    try:
        yield session
    finally:
        try:
            session.close()
        except exc.DBAPIError as error:
            if not (error.connection_invalidated or isinstance(error, exc.OperationalError)):
                raise


def _sqlite_engine(url: str, busy_timeout_seconds: float, echo: bool,
                   pool_size: int) -> Engine:
    database = make_url(url).database
    in_memory = database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {"echo": echo, "connect_args": {"check_same_thread": False,
                                                             "timeout": busy_timeout_seconds,
                                                             "factory": _WriterConnection}}
    if not in_memory:
        kwargs.update(pool_size=pool_size, max_overflow=2 * pool_size)
    engine = create_engine(url, **kwargs)
    busy_ms = int(busy_timeout_seconds * 1000)
    writers = threading.Lock()

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.writers = writers
        dbapi_connection.wait_seconds = busy_timeout_seconds
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite would defer it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        dbapi_connection = connection.connection.dbapi_connection
        if mode == "IMMEDIATE":
            dbapi_connection.queue_for_write()
        try:
            connection.exec_driver_sql(f"BEGIN {mode}")
        except BaseException:
            dbapi_connection.leave_write_queue()
            raise

    return engine


class _WriterConnection(sqlite3.Connection):
    """A sqlite3 connection that holds its engine's writer lock from BEGIN IMMEDIATE until the
    transaction has ended."""

    writers: threading.Lock | None = None
    wait_seconds: float = 30.0
    _holds_writers = False

    def queue_for_write(self) -> None:
        # Past the busy timeout, go on without the lock and let SQLite decide, as before.
        if self.writers is not None and self.writers.acquire(timeout=self.wait_seconds):
            self._holds_writers = True

    def leave_write_queue(self) -> None:
        if self._holds_writers:
            self._holds_writers = False
            self.writers.release()  # type: ignore[union-attr]

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.leave_write_queue()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.leave_write_queue()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.leave_write_queue()
