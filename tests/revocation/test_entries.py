"""The in-memory revocation set: its bound, and writers on several threads."""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from jotkit.revocation import Revocation, RevocationSet, SetFull

NOW = 1_000_000.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _claims(jti: str = "other", sid: str = "s-other", sub: str = "u-other") -> dict[str, object]:
    return {"jti": jti, "sid": sid, "sub": sub, "iat": NOW}


def _full_set(clock: Clock, **options: object) -> RevocationSet:
    revocations = RevocationSet(max_entries=3, clock=clock, **options)  # type: ignore[arg-type]
    for n in range(3):
        revocations.add(Revocation("jti", f"j{n}", NOW + 100, cursor=n + 1))
    return revocations


def test_an_entry_that_does_not_fit_makes_every_token_refused_until_it_expires() -> None:
    clock = Clock(NOW)
    revocations = _full_set(clock, fail_open=True)  # fail_open covers staleness, not this
    assert revocations.is_revoked(_claims()) is False
    revocations.add(Revocation("sid", "s-new", NOW + 500, cursor=4))
    assert len(revocations) == 3 and revocations.not_held == 1
    assert revocations.cursor == 4  # handled (by refusing), so the feed moves on
    # Not held, so the set cannot tell which token it revokes: it refuses all of them...
    with pytest.raises(SetFull) as refused:
        revocations.is_revoked(_claims())
    assert refused.value.code == "ERR_REVOCATION_SET_FULL"
    assert revocations.is_full
    clock.now = NOW + 500
    with pytest.raises(SetFull):
        revocations.is_revoked(_claims(sid="s-new"))
    # ...until every token it could match has expired; then dropping it changed nothing.
    clock.now = NOW + 500.5
    assert revocations.is_revoked(_claims(sid="s-new")) is False
    assert not revocations.is_full


def test_a_full_set_prunes_expired_entries_to_make_room() -> None:
    clock = Clock(NOW)
    revocations = _full_set(clock)
    clock.now = NOW + 101  # the three entries have expired
    revocations.add(Revocation("jti", "j-new", NOW + 900, cursor=4))
    assert revocations.not_held == 0 and len(revocations) == 1
    with pytest.raises(Exception, match="revoked"):
        revocations.is_revoked(_claims(jti="j-new"))


def test_a_full_set_still_updates_entries_it_holds() -> None:
    clock = Clock(NOW)
    revocations = RevocationSet(max_entries=1, clock=clock)
    revocations.add(Revocation("sub", "u1", NOW + 100, not_before=NOW - 10))
    # A later sign-out-everywhere of the same user moves its watermark: no new entry.
    revocations.add(Revocation("sub", "u1", NOW + 200, not_before=NOW + 5))
    assert revocations.not_held == 0
    with pytest.raises(Exception, match="signed out everywhere"):
        revocations.is_revoked({"sub": "u1", "iat": NOW})


def test_no_bound_when_max_entries_is_none() -> None:
    revocations = RevocationSet(max_entries=None)
    for n in range(5000):
        revocations.add(Revocation("jti", str(n), NOW + 100))
    assert len(revocations) == 5000 and revocations.is_revoked(_claims()) is False


@pytest.fixture
def frequent_switches() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # let the threads interleave inside a single comprehension
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("frequent_switches")
def test_prune_while_another_thread_adds() -> None:
    # A subscriber thread adds while upkeep prunes: prune's walk over a dict that grew under it
    # raised "dictionary changed size during iteration" (the old code, 5 runs of 5, within
    # 0.1 s). Two seconds of it: a loop length, not a timing assertion.
    revocations = RevocationSet(max_entries=None)
    done = threading.Event()

    def add() -> None:
        while not done.is_set():
            for kind in ("jti", "sid", "sub"):
                revocations.add(Revocation(kind, uuid.uuid4().hex, NOW + 100))  # type: ignore[arg-type]

    adder = threading.Thread(target=add)
    adder.start()
    try:
        until = time.monotonic() + 2
        while time.monotonic() < until:
            revocations.prune(NOW)
            revocations.entries()
    finally:
        done.set()
        adder.join(30)
    assert len(revocations) > 0
