"""Every algorithm signs and verifies through the public API."""

from __future__ import annotations

import time

import pytest

from jotkit import ALGORITHMS, Key, KeySet, jwt


@pytest.mark.parametrize("alg", sorted(ALGORITHMS))
def test_every_algorithm_round_trips_through_public_key_and_jwks(alg: str) -> None:
    key = Key.generate(alg)
    token = jwt.sign({"sub": "u", "exp": time.time() + 60}, key)
    verifier_key = key if key.kty == "oct" else key.public()
    assert jwt.verify(token, verifier_key)["sub"] == "u"
    jwks = KeySet([verifier_key]).to_jwks(private=key.kty == "oct")
    assert jwt.verify(token, KeySet.from_jwks(jwks))["sub"] == "u"
