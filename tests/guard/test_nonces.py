"""Stateless DPoP nonces (RFC 9449 §8, §9): any holder of the secret accepts them; they rotate."""

from __future__ import annotations

import pytest

from jotkit.guard import DPoPNonces

SECRET = b"n" * 32


class Clock:
    """A settable wall clock: the nonce window is a function of the time it is given."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_nonce_from_one_instance_is_accepted_by_another() -> None:
    clock = Clock(1_000_000.0)
    made = DPoPNonces(SECRET, window_seconds=60, clock=clock).fresh()
    assert DPoPNonces(SECRET, window_seconds=60, clock=clock).accepts(made)


def test_a_nonce_is_accepted_in_the_next_window_and_refused_two_windows_on() -> None:
    clock = Clock(1_000_000.0)
    nonces = DPoPNonces(SECRET, window_seconds=60, clock=clock)
    made = nonces.fresh()
    clock.now += 60
    assert nonces.fresh() != made  # rotated
    assert nonces.accepts(made)
    clock.now += 60
    assert not nonces.accepts(made)


def test_a_nonce_of_another_secret_is_refused() -> None:
    clock = Clock(1_000_000.0)
    made = DPoPNonces(b"o" * 32, clock=clock).fresh()
    assert not DPoPNonces(SECRET, clock=clock).accepts(made)


@pytest.mark.parametrize("nonce", [None, "", ".", "x.y", "-1.AAAA", "١٢.AAAA", "1" * 100])
def test_malformed_nonces_are_refused(nonce: str | None) -> None:
    assert not DPoPNonces(SECRET).accepts(nonce)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        DPoPNonces(b"short")
