"""The server's side of the revocation feed: from the store to every transport.

Every revocation is written to the store first (durable), then published: into this
process's ``RevocationSet`` (its own guard), to long-polling ``GET /revocations`` clients
(``jotkit.revocation.http_publisher.HttpFeedPublisher``), and to Redis when configured (a
``jotkit.revocation.transport.FeedPublisher``). ``sync()`` pulls entries other processes wrote
(a second server instance on PostgreSQL, the CLI), so every instance converges on the store's
feed. Entries are only ever taken from the store in cursor order, above the highest cursor
read: the guarantee each transport's answer rests on (``jotkit.revocation.http``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence

from jotkit.revocation import FeedPublisher, Revocation, RevocationSet
from jotkit.revocation.http_publisher import FeedPage, HttpFeedPublisher
from jotkit.store import Store, StoreError

__all__ = ["FeedPage", "ServerFeed"]

log = logging.getLogger("jotkit.feed")


class ServerFeed:
    """The store's feed in this process: the local RevocationSet, the HTTP long-poll
    publisher (``http``) and an optional push ``publisher`` (Redis)."""

    def __init__(self, store: Store, *, publisher: FeedPublisher | None = None) -> None:
        """``publisher`` is a ``jotkit.revocation.redis.RedisPublisher`` or None."""
        self._store = store
        self._publisher = publisher
        self._sync_lock = threading.Lock()
        self.revocations = RevocationSet()
        #: What ``GET /revocations`` serves; it also holds the highest cursor read.
        self.http = HttpFeedPublisher()

    @property
    def cursor(self) -> int:
        """The highest cursor this process has read: every entry up to it is here."""
        return self.http.cursor

    def publish(self, entries: Iterable[Revocation], *, now: float) -> None:
        """After this process stored ``entries``: its own guard takes them at once; the feed
        takes them with whatever other instances stored before them, from the store in cursor
        order (one read). If that read fails, the next ``sync`` brings them."""
        for entry in entries:
            self.revocations.add(entry)
        try:
            self.sync(now=now)
        except StoreError as exc:
            log.warning("revocation feed: store read failed (%s); next sync catches up", exc.code)

    def sync(self, *, now: float) -> None:
        """Take what the store holds above our cursor, in order, and pass it on (blocking: run
        it in a thread)."""
        with self._sync_lock:
            # The first read starts from the store's highest cursor, live or not: after a
            # restart whose last entries have expired, the cursor must not go back (a
            # subscriber would take that for a new database and read the whole feed again).
            # Read before the entries, so the floor can never cover an entry not yet read.
            # Entries are never taken ahead of the cursor: another instance's entry N-1 may
            # be committed (store ids commit in order) but not yet read here when our own N is.
            synced = self.http.cursor
            floor = self._store.last_cursor() if synced == 0 else 0
            entries = self._store.revocations_since(synced, now=now)
            fresh = self._apply(entries, floor)
        if fresh and self._publisher is not None:
            for entry in fresh:
                self._publisher.publish(entry)  # returns False when Redis is down: reseed later

    def _apply(self, entries: Sequence[Revocation], floor: int) -> list[Revocation]:
        for entry in entries:
            self.revocations.add(entry)
        fresh = self.http.publish(entries, max(floor, entries[-1].cursor if entries else 0))
        self.revocations.heard()
        return fresh

    def prune(self, *, now: float) -> None:
        """Forget entries whose tokens have all expired."""
        self.http.prune(now=now)
        self.revocations.prune(now)
        if self._publisher is not None:
            self._publisher.prune(now)  # Redis round trips: called from a worker thread

    def heartbeat(self, *, now: float) -> None:
        """Tell Redis subscribers we are alive; reseed the Redis log if Redis lost it."""
        if self._publisher is None:
            return
        try:
            if self._publisher.heartbeat():
                self._publisher.reseed(self.http.live(now=now))
                log.warning("redis revocation log was empty (restart?): reseeded from the store")
        except Exception as exc:  # Redis down: the store keeps the truth, retry next beat
            log.warning("redis heartbeat failed: %s", type(exc).__name__)

    def close(self) -> None:
        """Release the Redis connection."""
        if self._publisher is not None:
            self._publisher.close()
