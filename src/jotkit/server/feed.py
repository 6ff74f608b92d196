"""The server's side of the revocation feed.

Every revocation is written to the store first (durable), then published: into this
process's ``RevocationSet`` (its own guard), to long-polling ``GET /revocations`` clients, and
to Redis when configured. ``sync()`` pulls entries other processes wrote (a second server
instance on PostgreSQL, the CLI), so every instance converges on the store's feed.

The cursor guarantee: a ``FeedPage`` holds every live entry in ``(since, cursor]``. Entries and
cursor are taken together under one lock, and the cursor only moves in the same step that adds
the entries below it, so a subscriber that resumes from an answer's cursor misses nothing. This
rests on the store making cursors visible in order (``store/revocations.py``).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from jotkit.revocation import Revocation, RevocationSet
from jotkit.store import Store, StoreError

__all__ = ["FeedPage", "ServerFeed"]

log = logging.getLogger("jotkit.feed")


@dataclass(frozen=True, slots=True)
class FeedPage:
    """One answer of the feed: every live entry above the asked cursor, up to ``cursor``.

    ``closing`` is set when the server is shutting down: the answer is complete, and the
    subscriber should poll again (another instance, or this one restarted) after a short pause.
    """

    cursor: int
    entries: Sequence[Revocation]
    closing: bool = False


class ServerFeed:
    """Live entries by cursor, the local RevocationSet, long-poll waiters, an optional Redis."""

    def __init__(self, store: Store, *, publisher: Any = None) -> None:
        """``publisher`` is a ``jotkit.revocation.redis.RedisPublisher`` or None."""
        self._store = store
        self._publisher = publisher
        # Guards the three below: an answer reads them together (see FeedPage).
        self._lock = threading.Lock()
        # Live entries in cursor order, and their cursors (for bisect): a poll costs
        # O(log n + answer), not a scan of every live entry.
        self._entries: list[Revocation] = []
        self._cursors: list[int] = []
        # The highest cursor read from the store. Entries are only ever taken from the store
        # in cursor order above it, never ahead of it: another instance's entry N-1 may be
        # committed (store ids commit in order) but not yet read here when our own N is.
        self._synced = 0
        self._sync_lock = threading.Lock()
        self.revocations = RevocationSet()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._closing = False
        #: Long-polls held right now (a gauge for /metrics).
        self.polls = 0

    @property
    def cursor(self) -> int:
        """The highest cursor this process has read: every entry up to it is here."""
        with self._lock:
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
            # The first read starts from the store's highest cursor, live or not: after a
            # restart whose last entries have expired, the cursor must not go back (a
            # subscriber would take that for a new database and read the whole feed again).
            # Read before the entries, so the floor can never cover an entry not yet read.
            floor = self._store.last_cursor() if self._synced == 0 else 0
            entries = self._store.revocations_since(self._synced, now=now)
            fresh = self._apply(entries, floor)
        if not fresh:
            return
        if self._publisher is not None:
            for entry in fresh:
                self._publisher.publish(entry)  # returns False when Redis is down: reseed later
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake)

    def _apply(self, entries: Sequence[Revocation], floor: int) -> list[Revocation]:
        with self._lock:
            last = self._cursors[-1] if self._cursors else 0
            fresh = [entry for entry in entries if entry.cursor > last]
            for entry in fresh:
                self._entries.append(entry)
                self._cursors.append(entry.cursor)
                self.revocations.add(entry)
            # In the same step as the entries: an answer never sees a cursor ahead of them.
            self._synced = max(self._synced, floor, last, *(e.cursor for e in entries[-1:]))
        self.revocations.heard()
        return fresh

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    def page(self, since: int, *, now: float) -> FeedPage:
        """Live entries above ``since`` and the cursor they reach, read together."""
        with self._lock:
            start = bisect.bisect_right(self._cursors, since)
            entries = [e for e in self._entries[start:] if e.forget_after >= now]
            return FeedPage(self._synced, entries, self._closing)

    async def wait(self, since: int, timeout: float, *, now: float) -> FeedPage:
        """The page above ``since``, waiting up to ``timeout`` seconds for an entry to arrive.

        Answers at once when there is something to say: entries, a cursor below ``since``
        (the store was replaced), or the server closing.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self.polls += 1
        try:
            while True:
                changed = self._changed
                page = self.page(since, now=now)
                remaining = deadline - loop.time()
                if changed is None or remaining <= 0 or page.entries or page.closing:
                    return page
                if page.cursor < since:
                    return page
                try:
                    await asyncio.wait_for(changed.wait(), remaining)
                except TimeoutError:
                    return self.page(since, now=now)
        finally:
            self.polls -= 1

    def end_polls(self) -> None:
        """Shutting down: answer every held long-poll now (``closing``), and new ones at once.

        A poll left held would be cancelled at the end of the graceful shutdown, which the
        client sees as an error (an HTTP 500 with uvicorn).
        """
        self._closing = True
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake)

    def live(self, *, now: float) -> Sequence[Revocation]:
        """Every live entry (to reseed Redis after it lost its data)."""
        return self.page(0, now=now).entries

    def prune(self, *, now: float) -> None:
        """Forget entries whose tokens have all expired."""
        with self._lock:
            self._entries = [e for e in self._entries if e.forget_after >= now]
            self._cursors = [e.cursor for e in self._entries]
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
