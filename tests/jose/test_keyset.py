"""Key sets a verifier trusts: never a shared secret beside public keys (Wycheproof's mixed
JWK Set case)."""

from __future__ import annotations

import pytest
from _assertions import assert_raises_code as _assert_raises

from jotkit import InvalidKey, Key, KeyNotFound, KeySet, jwt

NOW = 1_900_000_000
CLAIMS = {"sub": "u", "exp": 2_000_000_000}
SECRET = Key.from_secret(b"s" * 32, alg="HS256", kid="shared")
RSA = Key.generate("RS256", kid="rsa")
EC = Key.generate("ES256", kid="ec")
ED = Key.generate("Ed25519", kid="ed")


@pytest.mark.parametrize("public", [RSA.public(), EC.public(), ED.public(), RSA])
def test_a_set_mixing_a_secret_and_a_public_key_is_refused(public: Key) -> None:
    for keys in ([SECRET, public], [public, SECRET]):
        _assert_raises(InvalidKey, "ERR_JWKS_MIXED_KEY_TYPES", KeySet, keys)
    jwks = {"keys": [public.to_jwk(), SECRET.to_jwk(private=True)]}
    _assert_raises(InvalidKey, "ERR_JWKS_MIXED_KEY_TYPES", KeySet.from_jwks, jwks)


def test_the_attack_a_mixed_set_would_allow() -> None:
    # Whoever shares the secret signs an HS256 token naming it; with the public key alone,
    # the verifier never considers HMAC.
    forged = jwt.sign(CLAIMS, SECRET)
    _assert_raises(KeyNotFound, "ERR_JWKS_NO_MATCHING_KEY", jwt.verify, forged, KeySet([RSA]))
    with pytest.raises(InvalidKey):
        KeySet([RSA.public(), SECRET])


def test_sets_of_one_kind_still_load_and_verify() -> None:
    publics = KeySet([RSA.public(), EC.public(), ED.public()])
    assert jwt.verify(jwt.sign(CLAIMS, EC), publics, now=NOW) == CLAIMS
    other = Key.from_secret(b"t" * 48, alg="HS384", kid="other")
    secrets = KeySet.from_jwks({"keys": [SECRET.to_jwk(private=True), other.to_jwk(True)]})
    assert jwt.verify(jwt.sign(CLAIMS, other), secrets, now=NOW) == CLAIMS


def test_an_encryption_secret_beside_public_keys_is_not_a_verifying_key() -> None:
    # use "enc" keys never check a signature, so they cannot be picked: the set loads, and
    # an HS256 token naming that key finds no key.
    enc_secret = {**SECRET.to_jwk(private=True), "use": "enc", "kid": "wrap"}
    keys = KeySet.from_jwks({"keys": [RSA.public().to_jwk(), enc_secret]})
    assert len(keys) == 2
    forged = jwt.sign(CLAIMS, Key.from_secret(b"s" * 32, alg="HS256", kid="wrap"))
    _assert_raises(KeyNotFound, "ERR_JWKS_NO_MATCHING_KEY", jwt.verify, forged, keys, now=NOW)


def test_a_published_set_skips_the_secret_instead() -> None:
    # public_only (a fetched jwks_uri) drops oct keys before building the set.
    jwks = {"keys": [RSA.public().to_jwk(), SECRET.to_jwk(private=True)]}
    assert [key.kid for key in KeySet.from_jwks(jwks, public_only=True)] == ["rsa"]
