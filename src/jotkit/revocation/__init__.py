"""The revocation feed: revoked jti/sid and per-user watermarks, held in every verifier's memory.

``RevocationSet`` is the in-memory set a ``Verifier`` checks on every request; transports
keep it up to date, each one module with both its ends (the auth server's publisher and the
verifier's subscriber): ``jotkit.revocation.redis`` (pub/sub and a catch-up log) and
``jotkit.revocation.http`` (long-polling the auth server's ``GET /revocations``).
``jotkit.revocation.transport`` holds what they share: the ``Feed`` (subscriber) and
``FeedPublisher`` protocols and the subscriber thread. ``jotkit.revocation.replay`` holds the
replay caches of one-time identifiers (DPoP proofs), the other memory of what was seen.
"""

from __future__ import annotations

from jotkit.revocation.entries import (
    DEFAULT_MAX_ENTRIES,
    KINDS,
    FeedStale,
    Revocation,
    RevocationSet,
    SetFull,
)
from jotkit.revocation.transport import Feed, FeedPublisher

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "KINDS",
    "Feed",
    "FeedPublisher",
    "FeedStale",
    "Revocation",
    "RevocationSet",
    "SetFull",
]
