"""The store's connection plumbing: engine, transactions, migrations, errors.

One SQLAlchemy engine over SQLite (the embedded default) or PostgreSQL. Every multi-row change
runs in one transaction (``_write``), so a failure leaves nothing half-written. On SQLite,
writers of one process are serialized by a lock (SQLite allows one writer at a time anyway;
the lock turns "database is locked" into waiting).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, IntegrityError, SQLAlchemyError

from jotkit.extras import require_extra
from jotkit.store.errors import Conflict, StoreError

if TYPE_CHECKING:
    from jotkit.store.loop import LoopConnections

__all__ = ["Conflict", "Database", "StoreError"]

_MIGRATIONS = Path(__file__).parent / "migrations"
# A pooled connection idle longer than this is pinged (SELECT 1) before use; one in steady use
# is not: a ping on every checkout was one more round trip on every refresh.
PING_IDLE_SECONDS = 5.0
# Connections older than this are replaced, so that none outlives a server-side idle or
# lifetime limit (PgBouncer, a cloud proxy) by much.
RECYCLE_SECONDS = 1800
# How long a request waits for a pooled connection when every one is busy.
POOL_TIMEOUT_SECONDS = 10.0


class Database:
    """An open database: the engine, its transactions and its schema version.

    The concern classes of the store (users, sessions, revocations, keys, throttling) build
    on it; ``Store`` combines them.
    """

    def __init__(self, url: str, *, pool_connections: int = 10) -> None:
        """Open (not migrate) the database at ``url``: sqlite:///path or postgresql://...

        ``pool_connections``: the threads of each of the server's two thread pools
        (``jotkit.server.app``); the pool keeps up to twice that many PostgreSQL
        connections, so a request waits in order for a thread, never for a connection.
        """
        parsed = make_url(url)
        self._pool_connections = pool_connections
        #: PostgreSQL connections for statements awaited on the event loop (``open_on_loop``).
        self.on_loop: LoopConnections | None = None
        self.dialect = parsed.get_backend_name()
        if self.dialect == "postgresql" and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.drivername == "postgresql+psycopg":
            require_extra("a PostgreSQL database", "'jotkit[postgres]'", "psycopg")
        options: dict[str, Any] = {"future": True}
        if self.dialect == "sqlite":
            path = parsed.database
            if path and path != ":memory:":
                _create_private_file(Path(path))
            # isolation_level None: the driver leaves transactions to us (_sqlite_begin).
            options["connect_args"] = {
                "timeout": 30,
                "check_same_thread": False,
                "isolation_level": None,
            }
        else:
            # Two thread pools of pool_connections each run the server's blocking work
            # (requests, and the background tasks' asyncio.to_thread): with a connection for
            # each, none waits and none is opened and closed per request (an overflow
            # connection is: a backend fork, 50 times a second for the 20 ms feed poll
            # when every pooled one was busy). Opened lazily, kept once open.
            options.update(
                pool_size=2 * pool_connections,
                max_overflow=4,
                pool_timeout=POOL_TIMEOUT_SECONDS,
                pool_recycle=RECYCLE_SECONDS,
            )
            # A database that stops answering (a dropped route, a frozen host) must fail a
            # request within seconds, not hold it and its worker thread for ever: bound the
            # connect, and let TCP keepalives and tcp_user_timeout (libpq) cut a dead link.
            options["connect_args"] = {
                "connect_timeout": 5,
                "keepalives": 1,
                "keepalives_idle": 5,
                "keepalives_interval": 2,
                "keepalives_count": 2,
                "tcp_user_timeout": 10_000,
            }
        #: What each new connection is opened with (a listening one too: store/notices.py).
        self.connect_args: dict[str, Any] = options.get("connect_args", {})
        self.engine: Engine = create_engine(parsed, **options)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        else:
            event.listen(self.engine, "checkin", _note_checkin)
            event.listen(self.engine, "checkout", self._ping_if_idle)
        # One statement that commits on its own: on PostgreSQL one round trip, where BEGIN,
        # the statement and COMMIT took three (the refresh's fast path, store/sessions.py).
        self._autocommit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if self.dialect == "sqlite" else contextlib.nullcontext()
        )

    def _ping_if_idle(self, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("checked_in")
        if idle_since is None or time.monotonic() - idle_since < PING_IDLE_SECONDS:
            return
        try:
            self.engine.dialect.do_ping(dbapi_connection)
            dbapi_connection.rollback()  # the ping opened a transaction (psycopg)
        except Exception as exc:
            # The pool drops this connection and checks out (or opens) another.
            raise DisconnectionError(f"stale pooled connection: {type(exc).__name__}") from exc

    def open_on_loop(self) -> None:
        """Let one-statement work run on the running event loop (PostgreSQL; the server calls
        this at start-up): ``on_loop``, up to ``pool_connections`` connections
        (store/loop.py). SQLite has no network wait to overlap: it keeps ``on_loop`` None."""
        if self.dialect != "postgresql" or self.on_loop is not None:
            return
        from jotkit.store.loop import LoopConnections  # psycopg: the postgres extra

        self.on_loop = LoopConnections(
            self.libpq_connect_args(),
            size=self._pool_connections,
            ping_idle_seconds=PING_IDLE_SECONDS,
            recycle_seconds=RECYCLE_SECONDS,
            pool_timeout_seconds=POOL_TIMEOUT_SECONDS,
        )

    def libpq_connect_args(self) -> dict[str, Any]:
        """What a psycopg connection of our own is opened with (PostgreSQL): the URL's
        parameters and the engine's ``connect_args``."""
        _, connect_args = self.engine.dialect.create_connect_args(self.engine.url)
        connect_args.pop("context", None)  # SQLAlchemy's own adapters, not libpq's
        return {**connect_args, **self.connect_args}

    async def close_on_loop(self) -> None:
        """Close the event loop's connections (``open_on_loop``)."""
        if self.on_loop is not None:
            await self.on_loop.close()
            self.on_loop = None

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent)."""
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        try:
            with self._write_lock, self.engine.connect() as connection:
                connection.info[_WRITER] = True
                connection.begin()
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                connection.commit()
        except SQLAlchemyError as exc:  # unreachable at start: one line, not a traceback
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            raise StoreError(f"cannot open the database: {reason}") from exc

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def ping(self) -> bool:
        """True when the database answers a trivial query (for /readyz)."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self._write_lock, self.engine.connect() as connection:
                connection.info[_WRITER] = True
                transaction = connection.begin()
                try:
                    yield connection
                except BaseException:
                    transaction.rollback()
                    raise
                try:
                    transaction.commit()
                except IntegrityError:
                    raise  # a deferred constraint: refused, so rolled back (Conflict below)
                except SQLAlchemyError as exc:
                    # The link may have died after the server committed: only "unknown" is
                    # true (a known rollback reported so is imprecise, never false).
                    raise StoreError(
                        f"database error while committing ({type(exc).__name__})",
                        outcome_unknown=True,
                    ) from exc
        except IntegrityError as exc:
            raise Conflict("already exists") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"database error ({type(exc).__name__})") from exc

    @contextlib.contextmanager
    def _statement(self) -> Iterator[Connection]:
        """A connection on which each statement is its own transaction (autocommit).

        For a change that one statement makes whole (PostgreSQL: a data-modifying CTE). If the
        link fails while the statement runs, it may have committed: ``outcome_unknown``.
        """
        try:
            with self._autocommit_engine.connect() as connection:
                yield connection
        except IntegrityError as exc:
            raise Conflict("already exists") from exc
        except SQLAlchemyError as exc:
            lost = bool(getattr(exc, "connection_invalidated", False))
            raise StoreError(
                f"database error ({type(exc).__name__})", outcome_unknown=lost
            ) from exc

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise StoreError(f"database error ({type(exc).__name__})") from exc


def from_row(cls: Any, row: Any) -> Any:
    """A record (``User``, ``Family``...) built from a row whose columns are its fields."""
    return cls(**row._mapping)


def as_values(record: Any) -> dict[str, Any]:
    """A record's fields as column values for an INSERT."""
    return {name: getattr(record, name) for name in record.__slots__}


def _create_private_file(path: Path) -> None:
    # The embedded store holds password hashes and (maybe unencrypted) private keys:
    # owner-only from the first byte, not chmod-ed after the fact.
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    except OSError as exc:  # a parent that is a file, a dangling link, no permission...
        raise StoreError(f"cannot create the database file {path}: {exc.strerror or exc}") from None


def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in"] = time.monotonic()


_WRITER = "jotkit_writer"


def _sqlite_begin(connection: Connection) -> None:
    # A writer takes SQLite's write lock when its transaction starts (BEGIN IMMEDIATE), so
    # another process's writer waits (busy_timeout) instead of failing: with the deferred
    # BEGIN, two transactions that both read then write cannot both go on, and one got
    # "database is locked" at once (jotkit serve --workers, or the CLI next to the server).
    writer = connection.info.pop(_WRITER, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers never block the writer; NORMAL sync is durable across process crashes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
