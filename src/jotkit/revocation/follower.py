"""Deprecated since 0.1.0, removed in 0.3.0: ``FeedFollower`` lives in
``jotkit.revocation.transport`` (docs/renames.md)."""

from __future__ import annotations

import warnings

from jotkit.revocation.transport import FeedFollower

__all__ = ["FeedFollower"]

warnings.warn(
    "jotkit.revocation.follower is deprecated: import FeedFollower from "
    "jotkit.revocation.transport",
    DeprecationWarning,
    stacklevel=2,
)
