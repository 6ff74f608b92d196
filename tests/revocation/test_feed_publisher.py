"""The auth server's end of the HTTP feed, in process: what a page holds, and what the held
entries cost the garbage collector (every full collection stops the whole server)."""

from __future__ import annotations

import gc

from jotkit.revocation import Revocation
from jotkit.revocation.http_publisher import HttpFeedPublisher

NOW = 1_800_000_000.0


def _entries(first: int, count: int, *, forget_after: float = NOW + 900) -> list[Revocation]:
    return [
        Revocation("jti" if n % 2 else "sid", f"value-{n}", forget_after, 0.0, n)
        for n in range(first, first + count)
    ]


def test_a_page_holds_the_live_entries_above_since_in_cursor_order() -> None:
    publisher = HttpFeedPublisher()
    publisher.publish(_entries(1, 5), 5)
    publisher.publish(_entries(6, 3, forget_after=NOW - 1), 8)  # expired: not served
    publisher.publish(_entries(9, 2), 12)  # the cursor may run past the last entry (gaps)

    page = publisher.page(3, now=NOW)
    assert [entry.cursor for entry in page.entries] == [4, 5, 9, 10]
    assert page.entries[0] == Revocation("sid", "value-4", NOW + 900, 0.0, 4)
    assert page.cursor == 12
    assert publisher.page(12, now=NOW).entries == []

    publisher.prune(now=NOW)
    assert [entry.cursor for entry in publisher.live(now=NOW)] == [1, 2, 3, 4, 5, 9, 10]
    # What was already held is not taken again; the cursor never goes back.
    assert publisher.publish(_entries(9, 3), 11) == _entries(11, 1)
    assert publisher.cursor == 12


def test_held_entries_add_nothing_for_full_collections_to_walk() -> None:
    publisher = HttpFeedPublisher()
    gc.collect()
    before = len(gc.get_objects())
    for first in range(1, 20_001, 1_000):  # in store reads of 1,000, as the server takes them
        publisher.publish(_entries(first, 1_000), first + 999)
    gc.collect()  # the first collection stops tracking what holds nothing collectable
    grown = len(gc.get_objects()) - before
    assert len(publisher.live(now=NOW)) == 20_000
    assert grown < 1_000, f"{grown} objects tracked for 20,000 held entries"
