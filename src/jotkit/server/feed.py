"""The server's side of the revocation feed.

Every revocation is written to the store first (durable), then published: into this
process's ``RevocationSet`` (its own guard), to long-polling ``GET /revocations`` clients, and
to Redis when configured. ``sync()`` pulls entries other processes wrote (a second server
instance on PostgreSQL, the CLI), so every instance converges on the store's feed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from typing import Any

from jotkit.revocation import Revocation, RevocationSet
from jotkit.store import Store, StoreError

__all__ = ["ServerFeed"]

log = logging.getLogger("jotkit.feed")


class ServerFeed:
    """Live entries by cursor, the local RevocationSet, long-poll waiters, an optional Redis."""

    def __init__(self, store: Store, *, publisher: Any = None) -> None:
        """``publisher`` is a ``jotkit.revocation.redis.RedisPublisher`` or None."""
        self._store = store
        self._publisher = publisher
        self._lock = threading.Lock()
        self._entries: dict[int, Revocation] = {}
        # The highest cursor read from the store. Entries are only ever taken from the store
        # in cursor order above it, never ahead of it: another instance's entry N-1 may be
        # committed (store ids commit in order) but not yet read here when our own N is.
        self._synced = 0
        self._sync_lock = threading.Lock()
        self.revocations = RevocationSet()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None

    @property
    def cursor(self) -> int:
        """The highest cursor this process has read: every entry up to it is here."""
        return self._synced

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind to the server's event loop so publishes from worker threads wake waiters."""
        self._loop = loop
        self._changed = asyncio.Event()

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
            entries = self._store.revocations_since(self._synced, now=now)
            if entries:
                self._synced = max(self._synced, entries[-1].cursor)
            fresh = self._apply(entries)
        if not fresh:
            return
        if self._publisher is not None:
            for entry in fresh:
                self._publisher.publish(entry)  # returns False when Redis is down: reseed later
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake)

    def _apply(self, entries: Iterable[Revocation]) -> list[Revocation]:
        fresh = []
        with self._lock:
            for entry in entries:
                if entry.cursor not in self._entries:
                    self._entries[entry.cursor] = entry
                    self.revocations.add(entry)
                    fresh.append(entry)
        self.revocations.heard()
        return fresh

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    def since(self, cursor: int, *, now: float) -> list[Revocation]:
        """Live entries above ``cursor``, in order."""
        with self._lock:
            return sorted(
                (e for c, e in self._entries.items() if c > cursor and e.forget_after >= now),
                key=lambda e: e.cursor,
            )

    async def wait(self, cursor: int, timeout: float, *, now: float) -> list[Revocation]:
        """Entries above ``cursor``, waiting up to ``timeout`` seconds for one to arrive."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            found = self.since(cursor, now=now)
            remaining = deadline - loop.time()
            if found or remaining <= 0 or changed is None:
                return found
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                return self.since(cursor, now=now)

    def live(self, *, now: float) -> list[Revocation]:
        """Every live entry (to reseed Redis after it lost its data)."""
        return self.since(0, now=now)

    def prune(self, *, now: float) -> None:
        """Forget entries whose tokens have all expired."""
        with self._lock:
            for cursor in [c for c, e in self._entries.items() if e.forget_after < now]:
                del self._entries[cursor]
        self.revocations.prune(now)
        if self._publisher is not None:
            self._publisher.prune(now)  # Redis round trips: called from a worker thread

    def heartbeat(self, *, now: float) -> None:
        """Tell Redis subscribers we are alive; reseed the Redis log if Redis lost it."""
        if self._publisher is None:
            return
        try:
            if self._publisher.heartbeat():
                self._publisher.reseed(self.live(now=now))
                log.warning("redis revocation log was empty (restart?): reseeded from the store")
        except Exception as exc:  # Redis down: the store keeps the truth, retry next beat
            log.warning("redis heartbeat failed: %s", type(exc).__name__)

    def close(self) -> None:
        """Release the Redis connection."""
        if self._publisher is not None:
            self._publisher.close()
