"""Module paths the feed had before issue 19 (docs/renames.md) still import, and warn."""

from __future__ import annotations

import importlib
import sys

import pytest

from jotkit.revocation import Feed
from jotkit.revocation.transport import FeedFollower


def test_follower_module_reexports_feed_follower_and_warns() -> None:
    sys.modules.pop("jotkit.revocation.follower", None)
    with pytest.warns(DeprecationWarning, match="jotkit.revocation.transport"):
        module = importlib.import_module("jotkit.revocation.follower")
    assert module.FeedFollower is FeedFollower


def test_feed_protocol_has_one_home() -> None:
    import jotkit.guard
    import jotkit.guard.guard

    assert jotkit.guard.Feed is Feed
    assert jotkit.guard.guard.Feed is Feed
