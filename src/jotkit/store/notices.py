"""PostgreSQL's word that a revocation committed (LISTEN/NOTIFY), for every server process.

Every transaction that stores revocations also sends ``NOTIFY`` on ``CHANNEL``
(``store/revocations.py``); PostgreSQL delivers it when, and only if, the transaction commits.
``RevocationNotices`` holds one connection of its own that listens, and calls back at once: a
revocation made by another instance, another worker or the CLI reaches this process's feed
within a round trip, where the periodic store poll (``feed_poll_seconds``) made it wait for
the next poll, and a poll that a loaded event loop or thread pool delayed. The poll stays, as
the fallback for a lost listening connection. A notice carries nothing: the callback reads
the store above its cursor, so the feed's order and cursor guarantee are the store's, as
before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from jotkit.store.engine import Database

__all__ = ["CHANNEL", "RevocationNotices"]

log = logging.getLogger("jotkit.store")

CHANNEL = "jotkit_revocations"
# How often the listening thread looks up from its connection to see whether it should stop.
_CHECK_SECONDS = 0.5
# After the listening connection failed (database restarting...): the poll covers meanwhile.
_RETRY_SECONDS = 1.0


class RevocationNotices:
    """Calls ``on_notice`` from a thread of its own each time revocations commit (PostgreSQL).

    Notices that arrive together make one call. ``on_notice`` is also called each time the
    listening starts, for what committed before it did.
    """

    def __init__(self, database: Database, on_notice: Callable[[], None]) -> None:
        """Listen on ``database`` (PostgreSQL) with a connection outside its pool."""
        self._engine = create_engine(
            database.engine.url, poolclass=NullPool, connect_args=database.connect_args
        )
        self._on_notice = on_notice
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="jotkit-revocation-notices", daemon=True
        )

    def start(self) -> None:
        """Start listening (returns at once)."""
        self._thread.start()

    def close(self) -> None:
        """Stop listening and close the connection (blocks up to ~``_CHECK_SECONDS``)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(_CHECK_SECONDS + 5)
        self._engine.dispose()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # the poll covers until the next attempt
                log.warning("revocation notices: listening failed (%s)", type(exc).__name__)
                self._stop.wait(_RETRY_SECONDS)

    def _listen(self) -> None:
        raw = self._engine.raw_connection()
        try:
            connection: Any = raw.driver_connection  # a psycopg.Connection
            connection.autocommit = True  # LISTEN takes effect at once, not at a COMMIT
            connection.execute(f"LISTEN {CHANNEL}")
            self._on_notice()
            while not self._stop.is_set():
                heard = next(connection.notifies(timeout=_CHECK_SECONDS, stop_after=1), None)
                if heard is None:
                    continue
                for _queued in connection.notifies(timeout=0):
                    pass  # one read of the store covers every notice already here
                self._on_notice()
        finally:
            raw.close()
