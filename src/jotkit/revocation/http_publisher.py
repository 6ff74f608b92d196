"""The revocation feed over HTTP, the auth server's end: ``HttpFeedPublisher`` behind
``GET /revocations`` (protocol: ``jotkit.revocation.http``, whose ``HttpFeedSubscriber`` is the
verifier's end).

The publisher's guarantee: a ``FeedPage`` holds every live entry in ``(since, cursor]``.
Entries and cursor are taken together under one lock, and the cursor only moves in the same
step that adds the entries below it, so a subscriber that resumes from an answer's cursor
misses nothing. This rests on the server's store making cursors visible in order
(``store/revocations.py``), read by ``jotkit.server.feed.ServerFeed`` in cursor order.
"""

from __future__ import annotations

import asyncio
import bisect
import operator
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from jotkit.revocation.entries import Kind, Revocation

__all__ = ["FeedPage", "HttpFeedPublisher"]


@dataclass(frozen=True, slots=True)
class FeedPage:
    """One answer of the feed: every live entry above the asked cursor, up to ``cursor``.

    ``closing`` is set when the server is shutting down: the answer is complete, and the
    subscriber should poll again (another instance, or this one restarted) after a short pause.
    """

    cursor: int
    entries: Sequence[Revocation]
    closing: bool = False

    def to_json(self, *, heartbeat_seconds: float, now: float) -> dict[str, Any]:
        """The answer's body, as ``HttpFeedSubscriber`` reads it."""
        answer: dict[str, Any] = {
            "cursor": self.cursor,
            "entries": [entry.to_json() for entry in self.entries],
            "heartbeat_seconds": heartbeat_seconds,
            "now": now,
        }
        if self.closing:
            answer["closing"] = True
        return answer


class HttpFeedPublisher:
    """The server's end: live entries by cursor, and the long-polls waiting for more."""

    def __init__(self) -> None:
        """Empty, at cursor 0; ``attach`` it to the server's event loop before ``wait``."""
        # Guards the two below: an answer reads them together (see FeedPage).
        self._lock = threading.Lock()
        # Live entries in cursor order (bisected on their cursor: a poll costs O(log n +
        # answer), not a scan of every live entry), each held as a plain tuple of its fields,
        # which the garbage collector stops tracking. As Revocation objects, 10^6 of them
        # added 170 ms to every full collection, a pause of the whole server; as tuples, ~14
        # (benchmarks/bench_revocation_memory.py).
        self._entries: list[_Held] = []
        # The highest cursor the server has read from its store: every entry up to it is here.
        self._cursor = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        # The held long-polls, each a future the next publish completes. Not an asyncio.Event
        # awaited under wait_for: that took four turns of a loaded event loop from the
        # publish to the answer (the event, its task, wait_for's callback, the route), each
        # as long as every other ready request's step; a future awaited directly takes two.
        self._waiters: set[asyncio.Future[None]] = set()
        self._closing = False
        #: Long-polls held right now (a gauge for /metrics).
        self.polls = 0

    @property
    def cursor(self) -> int:
        """The highest cursor published: every entry up to it is here."""
        with self._lock:
            return self._cursor

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind to the server's event loop so publishes from worker threads wake waiters."""
        self._loop = loop

    def publish(self, entries: Sequence[Revocation], cursor: int) -> list[Revocation]:
        """Take ``entries`` (read in cursor order) and move the cursor to ``cursor``, in one
        step; returns those that were new here. Callable from any thread."""
        with self._lock:
            last = self._entries[-1][_CURSOR] if self._entries else 0
            fresh = [entry for entry in entries if entry.cursor > last]
            self._entries += [
                (e.kind, e.value, e.forget_after, e.not_before, e.cursor) for e in fresh
            ]
            # In the same step as the entries: an answer never sees a cursor ahead of them.
            self._cursor = max(self._cursor, cursor, last)
        if fresh and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake)
        return fresh

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            _settle(waiter)

    def page(self, since: int, *, now: float) -> FeedPage:
        """Live entries above ``since`` and the cursor they reach, read together."""
        with self._lock:
            start = bisect.bisect_right(self._entries, since, key=_cursor_of)
            entries = [Revocation(*held) for held in self._entries[start:] if held[_FORGET] >= now]
            return FeedPage(self._cursor, entries, self._closing)

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
                page = self.page(since, now=now)
                remaining = deadline - loop.time()
                if self._loop is None or remaining <= 0 or page.entries or page.closing:
                    return page
                if page.cursor < since:
                    return page
                # Registered before this task yields: a publish's _wake runs on this loop,
                # so it comes after, and sees this waiter (no wake-up is lost in between).
                waiter = loop.create_future()
                self._waiters.add(waiter)
                timer = loop.call_later(remaining, _settle, waiter)
                try:
                    await waiter
                finally:
                    timer.cancel()
                    self._waiters.discard(waiter)
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
        """Every live entry."""
        return self.page(0, now=now).entries

    def prune(self, *, now: float) -> None:
        """Forget entries whose tokens have all expired."""
        with self._lock:
            self._entries = [held for held in self._entries if held[_FORGET] >= now]


# A held entry: Revocation's fields in its order (kind, value, forget_after, not_before, cursor).
_Held = tuple[Kind, str, float, float, int]
_FORGET: Final = 2
_CURSOR: Final = 4
_cursor_of = operator.itemgetter(_CURSOR)


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
