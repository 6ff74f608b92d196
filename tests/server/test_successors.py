"""The sealed successor of a spent refresh token (server/successors.py)."""

from __future__ import annotations

import secrets

from jotkit.server.service import hash_refresh_token
from jotkit.server.successors import open_successor, seal_successor


def test_only_the_spent_token_opens_its_successor() -> None:
    spent, successor = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    sealed = seal_successor(spent, successor)
    assert open_successor(spent, sealed) == successor
    assert open_successor(successor, sealed) is None
    # What the store holds about the spent token (its hash) is not its key.
    assert open_successor(hash_refresh_token(spent), sealed) is None


def test_a_sealed_successor_reveals_nothing_and_resists_alteration() -> None:
    spent, successor = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    sealed = seal_successor(spent, successor)
    assert successor.encode() not in sealed
    assert seal_successor(spent, successor) != sealed  # a fresh nonce each time
    altered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    assert open_successor(spent, altered) is None
