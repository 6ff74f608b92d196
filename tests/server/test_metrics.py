"""The Prometheus exposition text of ``Metrics``."""

from __future__ import annotations

from jotkit.server.metrics import Metrics


def test_gauges_render_integers_exactly() -> None:
    # A feed cursor or an entry count past a million must not come out as 1.23457e+06.
    text = Metrics().render([("jotkit_revocation_feed_cursor", "The cursor.", 1_234_567)])
    assert "\njotkit_revocation_feed_cursor 1234567\n" in text
