"""The HTTP revocation feed subscriber against real HTTP servers speaking the feed protocol."""

from __future__ import annotations

import threading
import time

import pytest
from _revocation_helpers import ManualClock, ScriptedFeedServer, verdict, wait_for

from jotkit.revocation import RevocationSet
from jotkit.revocation.http import FeedError, HttpFeedSubscriber
from servers import free_port

REVOKED = "ERR_JWT_REVOKED"
STALE = "ERR_REVOCATION_FEED_STALE"


def test_poll_once_applies_entries_and_resumes_from_the_cursor(
    scripted_feed: ScriptedFeedServer,
) -> None:
    now = time.time()
    scripted_feed.add("jti", "t1")
    scripted_feed.add("sid", "s1")
    scripted_feed.add("sub", "alice", not_before=now)
    revocations = RevocationSet()
    feed = HttpFeedSubscriber(scripted_feed.url, revocations, wait_seconds=0)
    assert feed.poll_once() == 3
    assert feed.cursor == 3
    assert verdict(revocations, {"jti": "t1"}) == REVOKED
    assert verdict(revocations, {"sid": "s1"}) == REVOKED
    assert verdict(revocations, {"sub": "alice", "iat": now - 10}) == REVOKED
    assert verdict(revocations, {"sub": "alice", "iat": now + 10}) == "accepted"
    scripted_feed.add("jti", "t2")
    assert feed.poll_once() == 1
    assert scripted_feed.requests[-1]["since"] == "3"
    assert verdict(revocations, {"jti": "t2"}) == REVOKED
    feed.close()


def test_a_held_poll_returns_the_entry_that_arrives_during_the_hold(
    scripted_feed: ScriptedFeedServer,
) -> None:
    revocations = RevocationSet()
    feed = HttpFeedSubscriber(scripted_feed.url, revocations, wait_seconds=30)
    scripted_feed.add("jti", "old")
    assert feed.poll_once(0) == 1

    def revoke_once_held() -> None:
        wait_for(lambda: scripted_feed.holding == 1, "the poll to be held")
        scripted_feed.add("jti", "t1")

    revoker = threading.Thread(target=revoke_once_held)
    revoker.start()
    assert feed.poll_once() == 1  # answered by the entry, not by the 30 s hold running out
    revoker.join()
    assert scripted_feed.requests[-1] == {"since": "1", "wait": "30"}
    assert verdict(revocations, {"jti": "t1"}) == REVOKED
    feed.close()


def test_an_empty_answer_is_a_heartbeat(scripted_feed: ScriptedFeedServer) -> None:
    clock = ManualClock()
    revocations = RevocationSet(max_staleness_seconds=5, monotonic=clock)
    feed = HttpFeedSubscriber(scripted_feed.url, revocations, wait_seconds=0)
    clock.advance(6)
    assert verdict(revocations, {"jti": "t1"}) == STALE
    assert feed.poll_once() == 0
    assert verdict(revocations, {"jti": "t1"}) == "accepted"
    feed.close()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"cursor": "7", "entries": []}',
        b'{"cursor": 7}',
        b'{"cursor": 7, "entries": [{"kind": "jti", "value": "ok", "forget_after": 9e9},'
        b' {"kind": "bogus", "value": "x", "forget_after": 9e9}]}',
        b'{"cursor": 7, "entries": [{"kind": ["jti"], "value": "x", "forget_after": 9e9}]}',
        b'{"cursor": 7, "entries": [{"kind": "jti", "value": "x", "forget_after": 1e999}]}',
        b'{"cursor": 7, "entries": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
    ids=[
        "not-json",
        "not-object",
        "cursor-not-int",
        "no-entries",
        "one-bad-entry",
        "unhashable-kind",
        "infinite-forget-after",
        "deep-nesting",
    ],
)
def test_a_malformed_answer_is_refused_whole(
    scripted_feed: ScriptedFeedServer, body: bytes
) -> None:
    clock = ManualClock()
    revocations = RevocationSet(max_staleness_seconds=5, monotonic=clock)
    feed = HttpFeedSubscriber(scripted_feed.url, revocations, wait_seconds=0)
    scripted_feed.body = body
    clock.advance(6)
    with pytest.raises(FeedError) as raised:
        feed.poll_once()
    assert raised.value.code == "ERR_REVOCATION_FEED_MALFORMED"
    # Nothing applied, the cursor did not move, and the feed was not "heard".
    assert len(revocations) == 0
    assert feed.cursor == 0
    assert verdict(revocations, {"jti": "ok"}) == STALE
    feed.close()


def test_an_unreachable_or_failing_feed_raises_unavailable(
    scripted_feed: ScriptedFeedServer,
) -> None:
    revocations = RevocationSet()
    nowhere = HttpFeedSubscriber(f"http://127.0.0.1:{free_port()}", revocations, wait_seconds=0)
    with pytest.raises(FeedError) as raised:
        nowhere.poll_once()
    assert raised.value.code == "ERR_REVOCATION_FEED_UNAVAILABLE"
    nowhere.close()
    failing = HttpFeedSubscriber(scripted_feed.url, revocations, wait_seconds=0)
    scripted_feed.status = 503
    with pytest.raises(FeedError) as raised:
        failing.poll_once()
    assert raised.value.code == "ERR_REVOCATION_FEED_UNAVAILABLE"
    assert "503" in str(raised.value)
    failing.close()


def test_a_cursor_going_back_makes_the_subscriber_read_the_feed_again(
    scripted_feed: ScriptedFeedServer,
) -> None:
    revocations = RevocationSet()
    feed = HttpFeedSubscriber(scripted_feed.url, revocations, wait_seconds=0)
    scripted_feed.add("jti", "t1")
    scripted_feed.add("jti", "t2")
    feed.poll_once()
    assert feed.cursor == 2
    # The server now runs on a new database whose cursors start over.
    scripted_feed.entries.clear()
    scripted_feed.add("jti", "fresh")
    feed.poll_once()
    assert feed.cursor == 0
    assert feed.poll_once() == 1
    assert verdict(revocations, {"jti": "fresh"}) == REVOKED
    feed.close()


def test_wait_seconds_outside_the_protocol_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 30"):
        HttpFeedSubscriber("http://127.0.0.1:1", RevocationSet(), wait_seconds=31)


def test_the_background_loop_follows_the_feed_and_survives_errors(
    scripted_feed: ScriptedFeedServer,
) -> None:
    clock = ManualClock()
    revocations = RevocationSet(max_staleness_seconds=5, monotonic=clock)
    scripted_feed.add("jti", "t1")
    with HttpFeedSubscriber(
        scripted_feed.url, revocations, wait_seconds=1, backoff_max_seconds=0.2
    ) as feed:
        assert feed.wait_ready(30)
        assert verdict(revocations, {"jti": "t1"}) == REVOKED
        scripted_feed.add("sid", "s1")
        wait_for(lambda: verdict(revocations, {"sid": "s1"}) == REVOKED, "the second entry")

        scripted_feed.status = 503
        wait_for(lambda: not feed.connected, "the loop to see the feed failing")
        clock.advance(6)
        assert verdict(revocations, {"jti": "other"}) == STALE  # kept the set, refused to guess
        assert verdict(revocations, {"sid": "s1"}) == STALE

        scripted_feed.status = 200
        scripted_feed.add("jti", "t3")
        wait_for(lambda: feed.connected, "the loop to recover")
        wait_for(lambda: not revocations.is_stale, "the set to be fresh again")
        assert verdict(revocations, {"jti": "t3"}) == REVOKED
        assert verdict(revocations, {"sid": "s1"}) == REVOKED
        assert verdict(revocations, {"jti": "other"}) == "accepted"


def test_close_cuts_off_a_poll_the_server_is_holding(scripted_feed: ScriptedFeedServer) -> None:
    feed = HttpFeedSubscriber(scripted_feed.url, RevocationSet(), wait_seconds=30).start()
    assert feed.wait_ready(30)
    wait_for(lambda: scripted_feed.holding == 1, "the server to hold the next poll")
    feed.close(timeout=10)  # well inside the 30 s hold
    assert not feed._thread.is_alive()
    assert not feed.connected


def test_a_feed_answering_empty_at_once_is_not_polled_in_a_tight_loop(
    scripted_feed: ScriptedFeedServer,
) -> None:
    # A server that ignores "wait" and answers at once: the follower pauses between polls.
    scripted_feed.body = b'{"cursor": 0, "entries": []}'
    revocations = RevocationSet()
    feed = HttpFeedSubscriber(scripted_feed.url, revocations, wait_seconds=20)
    feed.start()
    try:
        wait_for(lambda: feed.connected, "the first poll")
        before = len(scripted_feed.requests)
        time.sleep(2.5)
        # Unpaused, this loop polls hundreds of times a second (seen: ~960/s).
        assert len(scripted_feed.requests) - before <= 5
    finally:
        feed.close()


def test_an_oversized_answer_is_refused(scripted_feed: ScriptedFeedServer) -> None:
    entry_json = b'{"kind": "jti", "value": "x", "forget_after": 9e9}, '
    scripted_feed.body = b'{"cursor": 1, "entries": [' + entry_json * 1_400_000 + b"]}"
    feed = HttpFeedSubscriber(scripted_feed.url, RevocationSet(), wait_seconds=0)
    with pytest.raises(FeedError) as raised:
        feed.poll_once()
    assert raised.value.code == "ERR_REVOCATION_FEED_MALFORMED" and "over" in str(raised.value)
    feed.close()
