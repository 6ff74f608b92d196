"""Interop with PyJWT, joserfc and jwcrypto, in both directions, for every shared algorithm.

Direction 1: jotkit signs, the peer verifies with the exported public key (PEM or JWK).
Direction 2: the peer signs with the exported private key, jotkit verifies with a key built
from the peer's own public export (so key import is exercised too).
"""

from __future__ import annotations

import json
import time
from typing import Any

import jwt as pyjwt
import pytest
from joserfc import jwk as rfc_jwk
from joserfc import jwt as rfc_jwt
from jwcrypto import jwk as c_jwk
from jwcrypto import jwt as c_jwt

from jotkit import Key, jwt
from jotkit.jose.b64 import b64decode

# Case name -> (algorithm to generate a jotkit key for, "alg" header value on the wire).
# "EdDSA-Ed448" is the polymorphic EdDSA alg over an Ed448 key (RFC 8037).
CASES: dict[str, tuple[str, str]] = {
    **{name: (name, name) for name in ("HS256", "HS384", "HS512")},
    **{name: (name, name) for name in ("RS256", "RS384", "RS512")},
    **{name: (name, name) for name in ("PS256", "PS384", "PS512")},
    **{name: (name, name) for name in ("ES256", "ES384", "ES512")},
    "EdDSA": ("EdDSA", "EdDSA"),
    "EdDSA-Ed448": ("Ed448", "EdDSA"),
    "Ed25519": ("Ed25519", "Ed25519"),
    "Ed448": ("Ed448", "Ed448"),
}

_CLASSIC = [c for c in CASES if c not in ("Ed25519", "Ed448")]
SUPPORTED: dict[str, list[str]] = {
    # PyJWT 2.x knows only the polymorphic "EdDSA" (with Ed25519 and Ed448 keys).
    "pyjwt": _CLASSIC,
    "joserfc": list(CASES),
    "jwcrypto": list(CASES),
}
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

PARAMS = [
    pytest.param(peer, case, id=f"{peer}-{case}")
    for peer, cases in SUPPORTED.items()
    for case in cases
]


@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    """One private jotkit key per case, generated once (RSA generation is the slow part)."""
    generated: dict[str, Key] = {}
    by_alg: dict[str, Key] = {}
    for case, (gen_alg, wire_alg) in CASES.items():
        if gen_alg not in by_alg:
            by_alg[gen_alg] = Key.generate(gen_alg)
        key = by_alg[gen_alg]
        if wire_alg != gen_alg:
            # A generated key is bound to its alg; re-import unbound to sign as "EdDSA".
            key = Key.from_pem(key.to_pem(private=True), alg=wire_alg)
        generated[case] = key
    return generated


def _claims() -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": "https://auth.example",
        "sub": "user-1",
        "iat": now,
        "exp": now + 600,
        "scope": "read write",
        "n": [1, 2.5, None, True, {"k": "é✓"}],
    }


def _secret(key: Key) -> bytes:
    return b64decode(key.to_jwk(private=True)["k"])


# -- direction 1: jotkit signs, the peer verifies ------------------------------------------


def _peer_verify(peer: str, token: str, key: Key, alg: str) -> dict[str, Any]:
    hmac = key.kty == "oct"
    if peer == "pyjwt":
        verify_key: Any = _secret(key) if hmac else key.to_pem()
        return pyjwt.decode(token, verify_key, algorithms=[alg])  # type: ignore[no-any-return]
    if peer == "joserfc":
        public_jwk = key.to_jwk(private=True) if hmac else key.to_jwk()
        rfc_key = rfc_jwk.import_key(public_jwk)
        decoded = rfc_jwt.decode(token, rfc_key, algorithms=[alg])
        assert decoded.header["alg"] == alg
        return dict(decoded.claims)
    public_jwk = key.to_jwk(private=True) if hmac else key.to_jwk()
    c_key = c_jwk.JWK(**public_jwk) if hmac else c_jwk.JWK.from_pem(key.to_pem())
    decoded_c = c_jwt.JWT(jwt=token, key=c_key, algs=[alg])
    return json.loads(decoded_c.claims)  # type: ignore[no-any-return]


@pytest.mark.parametrize(("peer", "case"), PARAMS)
def test_peer_verifies_jotkit_token(peer: str, case: str, keys: dict[str, Key]) -> None:
    key = keys[case]
    alg = CASES[case][1]
    claims = _claims()
    token = jwt.sign(claims, key, alg=alg)
    assert jwt.peek(token)[0]["alg"] == alg
    assert _peer_verify(peer, token, key, alg) == claims


# -- direction 2: the peer signs, jotkit verifies ------------------------------------------


def _peer_sign(peer: str, claims: dict[str, Any], key: Key, alg: str) -> tuple[str, Key]:
    """The peer's token and the jotkit verification key built from the peer's export."""
    hmac = key.kty == "oct"
    if peer == "pyjwt":
        signing_key: Any = _secret(key) if hmac else key.to_pem(private=True)
        token = pyjwt.encode(claims, signing_key, algorithm=alg)
        # PyJWT has no key export of its own: verify with the PEM (or raw secret) it used.
        verify_key = Key.from_secret(_secret(key), alg=alg) if hmac else Key.from_pem(key.to_pem())
        return token, verify_key
    if peer == "joserfc":
        rfc_key = rfc_jwk.import_key(key.to_jwk(private=True))
        token = rfc_jwt.encode({"alg": alg}, claims, rfc_key, algorithms=[alg])
        exported = rfc_key.as_dict(private=hmac)
        return token, Key.from_jwk(exported)
    private_jwk = key.to_jwk(private=True)
    c_key = c_jwk.JWK(**private_jwk) if hmac else c_jwk.JWK.from_pem(key.to_pem(private=True))
    signed = c_jwt.JWT(header={"alg": alg}, claims=claims)
    signed.make_signed_token(c_key)
    exported_c = c_key.export(as_dict=True) if hmac else c_key.export_public(as_dict=True)
    return signed.serialize(), Key.from_jwk(exported_c)


@pytest.mark.parametrize(("peer", "case"), PARAMS)
def test_jotkit_verifies_peer_token(peer: str, case: str, keys: dict[str, Key]) -> None:
    key = keys[case]
    alg = CASES[case][1]
    claims = _claims()
    token, verify_key = _peer_sign(peer, claims, key, alg)
    assert jwt.verify(token, verify_key) == claims
    assert jwt.verify(token, verify_key, algorithms=[alg]) == claims
    if key.kty != "oct":
        # The PEM route as well, whatever the peer exported.
        assert jwt.verify(token, Key.from_pem(key.to_pem()), algorithms=[alg]) == claims
