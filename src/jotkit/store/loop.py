"""PostgreSQL on the event loop: a few autocommit psycopg connections for one-statement work.

The refresh's rotation is one statement (store/sessions.py). Run in a worker thread, each
refresh paid a hand-off to the thread and back: futex waits, wake-ups and GIL hand-offs that
took about a quarter of the server's CPU under load (py-spy, benchmarks/bench_scale.py: 698
refresh/s at c=32 on one instance, 1.33 ms of server CPU per refresh). Awaited on the loop, the
same statement costs its round trip and nothing else (1,691 refresh/s, 0.58 ms).

Not psycopg_pool: its ``getconn`` waits out its whole timeout when the database is down, where
a request here must fail at once with the connect's own error (a 503 the client can retry).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.pq import ConnStatus, TransactionStatus

from jotkit.store.errors import Conflict, StoreError

__all__ = ["LoopConnections"]


class LoopConnections:
    """At most ``size`` connections, opened on demand, kept while healthy.

    A connection idle for ``ping_idle_seconds`` is pinged before use and one older than
    ``recycle_seconds`` is replaced (the thread pool's figures, store/engine.py); one left broken,
    closed or not idle is closed, never reused. A statement cancelled midway (the request's
    task cancelled) is cancelled in the server by psycopg, which then drains the connection.
    """

    def __init__(
        self,
        connect_args: Mapping[str, Any],
        *,
        size: int,
        ping_idle_seconds: float,
        recycle_seconds: float,
        pool_timeout_seconds: float,
    ) -> None:
        """``pool_timeout_seconds``: how long a statement waits for one of the ``size``."""
        self._connect_args = dict(connect_args)
        self.ping_idle_seconds = ping_idle_seconds
        self._recycle_seconds = recycle_seconds
        self._pool_timeout_seconds = pool_timeout_seconds
        self._slots = asyncio.Semaphore(size)
        self._idle: list[tuple[psycopg.AsyncConnection[Any], float]] = []  # (it, returned at)
        self._opened_at: dict[int, float] = {}  # id(connection) -> when it was opened
        self._closed = False

    async def fetch_one(self, sql: str, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Run one statement (its own transaction) and return its first row, or None (no
        row, or a statement that returns none).

        Raises ``Conflict`` on a constraint violation and ``StoreError`` otherwise, with
        ``outcome_unknown`` when the link died while the statement ran (it may have committed).
        """
        try:
            async with asyncio.timeout(self._pool_timeout_seconds):
                await self._slots.acquire()
        except TimeoutError:
            raise StoreError("database busy: no connection free within the pool timeout") from None
        try:
            connection = await self._take()
            try:
                cursor = await connection.execute(sql, params)
                row = None if cursor.description is None else await cursor.fetchone()
            except psycopg.IntegrityError as exc:
                raise Conflict("already exists") from exc
            except psycopg.Error as exc:
                raise StoreError(
                    f"database error ({type(exc).__name__})", outcome_unknown=connection.broken
                ) from exc
            finally:
                await self._give_back(connection)
            return row
        finally:
            self._slots.release()

    async def close(self) -> None:
        """Close the idle connections; one in use is closed when it comes back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            await self._drop(connection)

    async def _take(self) -> psycopg.AsyncConnection[Any]:
        now = time.monotonic()
        while self._idle:
            connection, returned_at = self._idle.pop()  # the warmest: the rest may age out
            if _ended_by_server(connection) or (
                now - self._opened_at.get(id(connection), now) > self._recycle_seconds
            ):
                await self._drop(connection)
            elif now - returned_at < self.ping_idle_seconds or await self._answers(connection):
                return connection
        try:
            connection = await psycopg.AsyncConnection.connect(
                autocommit=True, **self._connect_args
            )
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(f"cannot connect to the database: {reason}") from exc
        self._opened_at[id(connection)] = now
        return connection

    async def _answers(self, connection: psycopg.AsyncConnection[Any]) -> bool:
        try:
            await connection.execute("SELECT 1")
        except psycopg.Error:
            await self._drop(connection)
            return False
        return True

    async def _give_back(self, connection: psycopg.AsyncConnection[Any]) -> None:
        healthy = (
            not connection.broken
            and not connection.closed
            and connection.info.transaction_status == TransactionStatus.IDLE
        )
        if healthy and not self._closed:
            self._idle.append((connection, time.monotonic()))
        else:
            await self._drop(connection)

    async def _drop(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self._opened_at.pop(id(connection), None)
        with contextlib.suppress(psycopg.Error):  # a dead link: nothing left to release
            await connection.close()


def _ended_by_server(connection: psycopg.AsyncConnection[Any]) -> bool:
    """Whether the server ended this idle session (a shutdown, pg_terminate_backend, an idle
    timeout): it sent a FATAL error, then closed. Reading what is pending, without waiting
    (~0.4 µs a call), finds both, so a statement is never sent into a closed link only to come
    back "outcome unknown" when nothing could have been written."""
    try:
        for _ in range(2):  # the FATAL message, then the end of the stream
            connection.pgconn.consume_input()
    except psycopg.OperationalError:
        return True
    return connection.pgconn.status != ConnStatus.OK
