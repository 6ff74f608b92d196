"""The revocation feed over HTTP, both ends: the auth server's ``HttpFeedPublisher`` behind
``GET /revocations`` and the verifier's ``HttpFeedSubscriber`` that long-polls it.

Protocol: ``GET {url}/revocations?since=<cursor>&wait=<seconds>`` answers ``{"cursor": <highest
cursor the server knows>, "entries": [<entry>...], "heartbeat_seconds": ..., "now": ...}`` with
the live entries above ``since``. With ``wait`` > 0 the server holds the request until an entry
arrives or ``wait`` elapses, so an empty answer doubles as a heartbeat. Cursors are the store's
sequence numbers; the server makes them visible in order, so resuming from the last cursor
misses nothing.

The server's end is ``jotkit.revocation.http_publisher`` (re-exported here); this module is
the protocol's wire checks and the verifier's end. Neither end needs a web framework: the
server's route serves ``FeedPage.to_json()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from jotkit.codes import ERR_REVOCATION_FEED_MALFORMED, ERR_REVOCATION_FEED_UNAVAILABLE
from jotkit.revocation.entries import Revocation, RevocationSet
from jotkit.revocation.http_publisher import FeedPage, HttpFeedPublisher
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
