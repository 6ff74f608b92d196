"""Interop with PyJWT, joserfc, authlib and jwcrypto, both directions, every shared algorithm.

Direction 1: jotkit signs, the peer verifies with jotkit's exported public JWK, imported by
the peer's own JWK code (and with the PEM too, where the peer reads PEM).
Direction 2: the peer imports jotkit's private JWK, signs, and exports the public JWK with its
own code; jotkit verifies with a key imported from that export (and from the PEM).

What the peers lack (their limits, not jotkit's): PyJWT and authlib know only the polymorphic
"EdDSA", not RFC 9864's "Ed25519"/"Ed448"; node jose (tests/interop) has no Ed448.
"""

from __future__ import annotations

import json
import time
from typing import Any

import jwt as pyjwt
import pytest
from authlib.jose import JsonWebKey as AuthlibJWK  # deprecated for joserfc, still widely used
from authlib.jose import JsonWebToken as AuthlibJWT
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
    "authlib": _CLASSIC,
    "jwcrypto": list(CASES),
}
pytestmark = [
    pytest.mark.filterwarnings("ignore:EdDSA is deprecated"),
    pytest.mark.filterwarnings("ignore:authlib.jose module is deprecated"),
]

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


def _published(key: Key) -> dict[str, Any]:
    """What a verifier gets: the public JWK, or the whole JWK of a shared secret."""
    return key.to_jwk(private=key.kty == "oct")


def _peer_verify(peer: str, token: str, jwk: dict[str, Any], alg: str) -> dict[str, Any]:
    """The peer imports ``jwk`` with its own JWK code and verifies ``token``."""
    if peer == "pyjwt":
        return pyjwt.decode(token, pyjwt.PyJWK(jwk, alg), algorithms=[alg])  # type: ignore[no-any-return]
    if peer == "joserfc":
        decoded = rfc_jwt.decode(token, rfc_jwk.import_key(jwk), algorithms=[alg])
        assert decoded.header["alg"] == alg
        return dict(decoded.claims)
    if peer == "authlib":
        return dict(AuthlibJWT([alg]).decode(token, AuthlibJWK.import_key(jwk)))
    decoded_c = c_jwt.JWT(jwt=token, key=c_jwk.JWK(**jwk), algs=[alg])
    return json.loads(decoded_c.claims)  # type: ignore[no-any-return]


def _peer_verify_pem(peer: str, token: str, key: Key, alg: str) -> dict[str, Any]:
    """The same with the public key as PEM, for the peers that read PEM."""
    if peer == "pyjwt":
        return pyjwt.decode(token, key.to_pem(), algorithms=[alg])  # type: ignore[no-any-return]
    if peer == "authlib":
        return dict(AuthlibJWT([alg]).decode(token, AuthlibJWK.import_key(key.to_pem())))
    decoded_c = c_jwt.JWT(jwt=token, key=c_jwk.JWK.from_pem(key.to_pem()), algs=[alg])
    return json.loads(decoded_c.claims)  # type: ignore[no-any-return]


@pytest.mark.parametrize(("peer", "case"), PARAMS)
def test_peer_verifies_jotkit_token(peer: str, case: str, keys: dict[str, Key]) -> None:
    key = keys[case]
    alg = CASES[case][1]
    claims = _claims()
    token = jwt.sign(claims, key, alg=alg)
    assert jwt.peek(token)[0]["alg"] == alg
    assert _peer_verify(peer, token, _published(key), alg) == claims
    if key.kty != "oct" and peer != "joserfc":  # joserfc imports JWKs only
        assert _peer_verify_pem(peer, token, key, alg) == claims


# -- direction 2: the peer signs, jotkit verifies ------------------------------------------


def _peer_sign(peer: str, claims: dict[str, Any], key: Key, alg: str) -> tuple[str, Key]:
    """The peer's token, signed with jotkit's private JWK imported by the peer, and the
    jotkit verification key imported from the peer's own JWK export."""
    hmac = key.kty == "oct"
    private_jwk = key.to_jwk(private=True)
    if peer == "pyjwt":
        imported = pyjwt.PyJWK(private_jwk, alg)
        token = pyjwt.encode(claims, imported.key, algorithm=alg)
        algorithm = pyjwt.get_algorithm_by_name(alg)
        public = imported.key if hmac else imported.key.public_key()
        exported: Any = algorithm.to_jwk(public, as_dict=True)
    elif peer == "joserfc":
        rfc_key = rfc_jwk.import_key(private_jwk)
        token = rfc_jwt.encode({"alg": alg}, claims, rfc_key, algorithms=[alg])
        exported = rfc_key.as_dict(private=hmac)
    elif peer == "authlib":
        authlib_key = AuthlibJWK.import_key(private_jwk)
        token = AuthlibJWT([alg]).encode({"alg": alg}, claims, authlib_key).decode()
        exported = authlib_key.as_dict(is_private=hmac)
    else:
        c_key = c_jwk.JWK(**private_jwk)
        signed = c_jwt.JWT(header={"alg": alg}, claims=claims)
        signed.make_signed_token(c_key)
        token = signed.serialize()
        exported = c_key.export(as_dict=True) if hmac else c_key.export_public(as_dict=True)
    assert hmac or not {"d", "p", "q"} & set(exported), "a public export with private parts"
    return token, Key.from_jwk(exported)


@pytest.mark.parametrize(("peer", "case"), PARAMS)
def test_jotkit_verifies_peer_token(peer: str, case: str, keys: dict[str, Key]) -> None:
    key = keys[case]
    alg = CASES[case][1]
    claims = _claims()
    token, verify_key = _peer_sign(peer, claims, key, alg)
    assert jwt.peek(token)[0]["alg"] == alg
    assert jwt.verify(token, verify_key, algorithms=[alg]) == claims
    if key.kty != "oct":
        # The PEM route as well, whatever the peer exported.
        assert jwt.verify(token, Key.from_pem(key.to_pem()), algorithms=[alg]) == claims
