"""The revocation feed: revoked jti/sid and per-user watermarks, held in every verifier's memory.

``RevocationSet`` is the in-memory set a ``Verifier`` checks on every request; transports
(in-process, Redis pub/sub, the auth server's HTTP feed) keep it up to date.
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

__all__ = ["DEFAULT_MAX_ENTRIES", "KINDS", "FeedStale", "Revocation", "RevocationSet", "SetFull"]
