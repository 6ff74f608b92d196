"""The revocation feed over HTTP, both ends: the auth server's ``HttpFeedPublisher`` behind
``GET /revocations`` and the verifier's ``HttpFeedSubscriber`` that long-polls it.

Protocol: ``GET {url}/revocations?since=<cursor>&wait=<seconds>`` answers ``{"cursor": <highest
cursor the server knows>, "entries": [<entry>...], "heartbeat_seconds": ..., "now": ...}`` with
the live entries above ``since``. With ``wait`` > 0 the server holds the request until an entry
arrives or ``wait`` elapses, so an empty answer doubles as a heartbeat. Cursors are the store's
sequence numbers; the server makes them visible in order, so resuming from the last cursor
misses nothing.

The publisher's guarantee: a ``FeedPage`` holds every live entry in ``(since, cursor]``.
Entries and cursor are taken together under one lock, and the cursor only moves in the same
step that adds the entries below it, so a subscriber that resumes from an answer's cursor
misses nothing. This rests on the server's store making cursors visible in order
(``store/revocations.py``), read by ``jotkit.server.feed.ServerFeed`` in cursor order.
Neither end needs a web framework: the server's route serves ``FeedPage.to_json()``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import math
import operator
import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx
import orjson

from jotkit.codes import ERR_REVOCATION_FEED_MALFORMED, ERR_REVOCATION_FEED_UNAVAILABLE
from jotkit.revocation.entries import Kind, Revocation, RevocationSet
from jotkit.revocation.transport import FeedFollower

__all__ = ["FeedError", "FeedPage", "HttpFeedPublisher", "HttpFeedSubscriber"]

logger = logging.getLogger("jotkit.revocation")

#: The longest hold the feed protocol allows, in seconds.
MAX_WAIT_SECONDS = 30
#: The largest answer read: a catch-up of every live entry is ~100 bytes an entry.
MAX_ANSWER_BYTES = 64 * 1024 * 1024


class FeedError(Exception):
    """The feed answered something that is not a feed answer, or could not be reached.

    ``code`` is stable: ``ERR_REVOCATION_FEED_UNAVAILABLE`` (network, HTTP status) or
    ``ERR_REVOCATION_FEED_MALFORMED`` (the body breaks the protocol). The set is left as it
    was: nothing of a malformed answer is applied.
    """

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


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


def _parse_answer(body: Any) -> tuple[int, list[Revocation]]:
    if not isinstance(body, Mapping):
        raise FeedError("feed answer is not a JSON object", code=ERR_REVOCATION_FEED_MALFORMED)
    cursor = body.get("cursor")
    entries = body.get("entries")
    if type(cursor) is not int or cursor < 0 or not isinstance(entries, list):
        raise FeedError(
            "feed answer needs an integer cursor and a list of entries",
            code=ERR_REVOCATION_FEED_MALFORMED,
        )
    parsed = []
    for entry in entries:
        # All or nothing: skipping a bad entry while moving the cursor past it would lose a
        # revocation for good; refusing the answer leaves the set to go stale instead.
        if not isinstance(entry, Mapping):
            raise FeedError("feed entry is not a JSON object", code=ERR_REVOCATION_FEED_MALFORMED)
        try:
            parsed.append(Revocation.from_json(entry))
        except ValueError as error:
            raise FeedError(
                f"feed entry rejected: {error}", code=ERR_REVOCATION_FEED_MALFORMED
            ) from None
    return cursor, parsed


class HttpFeedSubscriber(FeedFollower):
    """Keeps a ``RevocationSet`` up to date by long-polling the auth server's feed.

    ``start()`` runs the poll loop in a daemon thread; ``poll_once()`` is one blocking poll.
    Every good answer marks the set ``heard()``; on errors the loop backs off and keeps the
    set as it is (the set's staleness bound decides whether tokens are still accepted).
    """

    def __init__(
        self,
        url: str,
        revocations: RevocationSet,
        *,
        wait_seconds: float = 25,
        headers: Mapping[str, str] | None = None,
        connect_timeout_seconds: float = 5.0,
        backoff_initial_seconds: float = 0.2,
        backoff_max_seconds: float = 10.0,
        prune_interval_seconds: float = 60.0,
    ) -> None:
        """Follow the feed of the auth server at base URL ``url``; call ``start()`` to begin."""
        if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
            raise ValueError(f"wait_seconds must be between 0 and {MAX_WAIT_SECONDS}")
        super().__init__(
            revocations,
            thread_name="jotkit-revocations-http",
            backoff_initial_seconds=backoff_initial_seconds,
            backoff_max_seconds=backoff_max_seconds,
            prune_interval_seconds=prune_interval_seconds,
        )
        self.url = url.rstrip("/")
        self.wait_seconds = wait_seconds
        #: The server's cursor after the last good answer: the next poll asks for what follows.
        self.cursor = 0
        self._headers = dict(headers or {})
        # The read timeout covers the server's hold plus a margin for a slow answer.
        self._timeout = httpx.Timeout(connect_timeout_seconds, read=MAX_WAIT_SECONDS + 10.0)
        self._client = httpx.Client(headers=self._headers, timeout=self._timeout)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        # The last answer said the server is shutting down (a deploy, most likely).
        self._closing = False

    def poll_once(self, wait_seconds: float | None = None) -> int:
        """One blocking poll: apply what the feed returns, mark the set heard.

        Returns how many entries were applied. Raises ``FeedError`` when the server cannot be
        reached or breaks the protocol.
        """
        wait = self.wait_seconds if wait_seconds is None else wait_seconds
        since = self.cursor
        url = f"{self.url}/revocations"
        try:
            with self._client.stream("GET", url, params=_params(since, wait)) as response:
                _check_status(response)
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    _check_size(body)
        except httpx.HTTPError as error:
            raise _unreachable(error) from None
        return self._absorb(since, bytes(body))

    async def _poll(self, client: httpx.AsyncClient, wait: float) -> int:
        since = self.cursor
        url = f"{self.url}/revocations"
        try:
            async with client.stream("GET", url, params=_params(since, wait)) as response:
                _check_status(response)
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    _check_size(body)
        except httpx.HTTPError as error:
            raise _unreachable(error) from None
        return self._absorb(since, bytes(body))

    def _absorb(self, since: int, answer: bytes) -> int:
        try:
            body = orjson.loads(answer)  # refuses nesting past 1024 levels, NaN and Infinity
        except orjson.JSONDecodeError:
            raise FeedError("feed answer is not JSON", code=ERR_REVOCATION_FEED_MALFORMED) from None
        cursor, entries = _parse_answer(body)
        for entry in entries:
            self.revocations.add(entry)
        if cursor < since:
            # The server's store starts below where we were (a new database): read it all again.
            logger.warning(
                "revocation feed cursor went back from %d to %d; re-reading it", since, cursor
            )
            self.cursor = 0
        else:
            # The answer's cursor alone: the server vouches that every entry up to it is in
            # the answer. An entry's own cursor vouches for nothing below it, and resuming
            # past it could skip an entry the server had not read yet.
            self.cursor = cursor
        self._closing = body.get("closing") is True
        self.revocations.heard()
        return len(entries)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the loop, cutting off a poll the server is holding."""
        self._closed.set()
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already finished
                loop.call_soon_threadsafe(stop.set)
        super().close(timeout)
        self._client.close()

    def _run(self) -> None:
        # An event loop of its own: a held poll is a task that close() can cancel at once,
        # where a blocking read would keep the thread for up to wait_seconds.
        asyncio.run(self._follow())

    async def _follow(self) -> None:
        self._stop = stop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        stopping = asyncio.ensure_future(stop.wait())
        failures = 0
        warned = False
        # When the server last said it was closing: failures soon after are its restart.
        closed_at = -math.inf
        # The first poll does not wait: it loads the live set as fast as the server can answer.
        wait: float = 0
        loop = asyncio.get_running_loop()
        async with httpx.AsyncClient(headers=self._headers, timeout=self._timeout) as client:
            while not self._closed.is_set():
                started = loop.time()
                # The whole poll has a deadline: a server trickling its answer a byte at a
                # time would pass every per-read timeout and hold the feed for ever.
                poll = asyncio.ensure_future(
                    asyncio.wait_for(self._poll(client, wait), wait + _POLL_MARGIN_SECONDS)
                )
                await asyncio.wait({poll, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not poll.done():
                    poll.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await poll
                    break
                error = poll.exception()
                if error is not None:
                    self._ready.clear()
                    code = getattr(error, "code", type(error).__name__)
                    if loop.time() - closed_at < _RESTART_QUIET_SECONDS:
                        if failures == 0:
                            logger.info(
                                "revocation feed: server restarting (%s); polling again", code
                            )
                    elif not warned:
                        warned = True
                        logger.warning(
                            "revocation feed: poll failed (%s: %s); backing off", code, error
                        )
                    delay = self._backoff_seconds(failures)
                    failures += 1
                    await asyncio.wait({stopping}, timeout=delay)
                    continue
                failures, warned = 0, False
                self._ready.set()
                self._prune_if_due()
                if self._closing:
                    # A complete answer from a server going down: poll again after a pause
                    # (jittered, so a fleet does not hit the next instance at once).
                    closed_at = loop.time()
                    pause = _CLOSING_PAUSE_SECONDS * (0.5 + random.random())  # noqa: S311 - jitter
                    await asyncio.wait({stopping}, timeout=pause)
                elif wait and not poll.result() and loop.time() - started < wait / 2:
                    # An empty answer long before the hold was up: the server is not holding.
                    # Pause instead of polling in a tight loop.
                    await asyncio.wait({stopping}, timeout=_EARLY_EMPTY_PAUSE_SECONDS)
                wait = self.wait_seconds
        stopping.cancel()
        self._ready.clear()


_POLL_MARGIN_SECONDS = 15.0
_EARLY_EMPTY_PAUSE_SECONDS = 1.0
# After a "closing" answer: the pause before the next poll (a restarting server needs a moment)
_CLOSING_PAUSE_SECONDS = 1.0
# After a "closing" answer, failures this long are a restart in progress: logged at INFO, not
# as a warning on every deploy. Past it, the first failure is a warning again.
_RESTART_QUIET_SECONDS = 30.0


def _check_status(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise FeedError(
            f"revocation feed answered HTTP {response.status_code}",
            code=ERR_REVOCATION_FEED_UNAVAILABLE,
        )


def _check_size(body: bytearray) -> None:
    if len(body) > MAX_ANSWER_BYTES:
        raise FeedError(
            f"feed answer is over {MAX_ANSWER_BYTES} bytes", code=ERR_REVOCATION_FEED_MALFORMED
        )


def _params(since: int, wait: float) -> dict[str, str | int]:
    return {"since": since, "wait": f"{wait:g}"}


def _unreachable(error: httpx.HTTPError) -> FeedError:
    return FeedError(
        f"revocation feed unreachable: {type(error).__name__}: {error}",
        code=ERR_REVOCATION_FEED_UNAVAILABLE,
    )
