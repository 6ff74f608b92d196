"""What every feed transport shares: the two ends' protocols and the subscriber thread.

A transport is one module of this package with both its ends: the auth server's publisher
and the verifier's subscriber (``jotkit.revocation.redis``, ``jotkit.revocation.http``).

- ``Feed``: what a verifier's subscriber offers the ``Guard``, which starts and closes it.
- ``FeedPublisher``: what the auth server pushes through (``RedisPublisher``). The server's
  ``ServerFeed`` reads its store in cursor order and hands each new entry to it.
- ``FeedFollower``: a daemon thread that keeps a ``RevocationSet`` up to date, a "caught up"
  flag, jittered backoff between failures, pruning now and then, and a clean stop.
  ``RedisSubscriber`` and ``HttpFeedSubscriber`` supply the loop (``_run``).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable
from typing import Any, Protocol, Self

from jotkit.revocation.entries import Revocation, RevocationSet

__all__ = ["Feed", "FeedFollower", "FeedPublisher"]


class Feed(Protocol):
    """A subscriber that keeps a RevocationSet up to date (HTTP poll, Redis pub/sub)."""

    def start(self) -> Any:
        """Begin feeding (may return an awaitable or nothing)."""

    def close(self) -> Any:
        """Stop feeding."""


class FeedPublisher(Protocol):
    """The auth server's end of a push transport; no call raises when the transport is down.

    ``publish`` takes stored entries (``cursor`` > 0) in cursor order; ``heartbeat`` tells
    subscribers the feed is alive and answers True when the transport lost what it held and
    needs ``reseed(every live entry)``; ``prune`` drops what has expired.
    """

    def publish(self, entry: Revocation) -> bool:
        """Send one entry; False when it could not (kept for a retry or the next reseed)."""

    def heartbeat(self) -> bool:
        """Say the feed is alive; True when ``reseed`` is needed."""

    def reseed(self, live_entries: Iterable[Revocation]) -> bool:
        """Give the transport every live entry again; False when it could not."""

    def prune(self, now: float | None = None) -> int:
        """Forget entries whose ``forget_after`` has passed; how many."""

    def close(self) -> None:
        """Release the connection."""


class FeedFollower:
    """The lifecycle of a feed subscriber; subclasses implement ``_run``."""

    def __init__(
        self,
        revocations: RevocationSet,
        *,
        thread_name: str,
        backoff_initial_seconds: float,
        backoff_max_seconds: float,
        prune_interval_seconds: float,
    ) -> None:
        self.revocations = revocations
        self.backoff_initial_seconds = backoff_initial_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.prune_interval_seconds = prune_interval_seconds
        self._ready = threading.Event()
        self._closed = threading.Event()
        self._last_prune = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        """Start the background thread; returns self."""
        self._thread.start()
        return self

    @property
    def connected(self) -> bool:
        """True once caught up with the feed, until the connection fails."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until caught up with the feed (or ``timeout``); returns ``connected``."""
        return self._ready.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread (waiting up to ``timeout`` seconds for it)."""
        self._closed.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    def _backoff_seconds(self, failures: int) -> float:
        """How long to wait after ``failures`` failures in a row (0 for the first)."""
        # Jitter spreads a fleet of verifiers coming back after the same server restart.
        ceiling = min(self.backoff_max_seconds, self.backoff_initial_seconds * 2.0**failures)
        return ceiling * (0.5 + random.random() / 2)  # noqa: S311 - timing jitter, not a secret

    def _prune_if_due(self) -> None:
        """Drop expired entries from the set, at most once per ``prune_interval_seconds``."""
        if time.monotonic() - self._last_prune > self.prune_interval_seconds:
            self._last_prune = time.monotonic()
            self.revocations.prune()
