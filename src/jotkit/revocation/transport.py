"""What every feed subscriber shares: a daemon thread that keeps a ``RevocationSet`` up to
date, a "caught up" flag, jittered backoff between failures, pruning now and then, and a
clean stop. ``RedisSubscriber`` and ``HttpFeedSubscriber`` supply the loop (``_run``)."""

from __future__ import annotations

import random
import threading
import time
from typing import Self

from jotkit.revocation.entries import RevocationSet

__all__ = ["FeedFollower"]


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
