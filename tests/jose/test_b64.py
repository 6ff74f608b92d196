"""Canonical base64url (RFC 4648 §3.5, Wycheproof's base64 cases): one spelling per value,
wherever a token segment or a JWK member is decoded."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from _assertions import assert_raises_code as _assert_raises

from jotkit import InvalidKey, Key, KeySet, MalformedToken, Verifier, jws, jwt
from jotkit.jose.b64 import b64decode, b64encode

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
SECRET = b"k" * 32
HS_KEY = Key.from_secret(SECRET)
EXP = 2_000_000_000
NOW = 1_900_000_000


def _lenient(text: str) -> bytes:
    """What a lenient decoder makes of ``text`` (the padding added, unused bits ignored)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _respell(text: str) -> str:
    """``text`` with the lowest unused bit of its last character set: the same bytes to a
    lenient decoder, another spelling to a canonical one."""
    assert len(text) % 4 in (2, 3), "this value has no unused bits to respell"
    respelt = text[:-1] + ALPHABET[ALPHABET.index(text[-1]) | 1]
    assert respelt != text and _lenient(respelt) == _lenient(text)
    return respelt


def _hs256(header_segment: str, payload_segment: str) -> str:
    """A token with a correct HMAC over exactly these segments' text."""
    signing_input = f"{header_segment}.{payload_segment}".encode()
    mac = hmac.new(SECRET, signing_input, hashlib.sha256).digest()
    return f"{header_segment}.{payload_segment}.{b64encode(mac)}"


def _segment(obj: object) -> str:
    return b64encode(json.dumps(obj, separators=(",", ":")).encode())


# -- the decoder ---------------------------------------------------------------------------


@pytest.mark.parametrize("length", [2, 3])
def test_only_the_canonical_last_characters_are_decoded(length: int) -> None:
    accepted = set()
    for char in ALPHABET:
        text = "Q" * (length - 1) + char
        try:
            b64decode(text)
        except MalformedToken as exc:
            assert exc.code == "ERR_JWS_MALFORMED"
            assert "not canonical" in str(exc)
        else:
            accepted.add(char)
            assert b64encode(b64decode(text)) == text
    # 2 characters carry 8 bits (4 unused: 4 choices left), 3 carry 16 (2 unused: 16).
    assert len(accepted) == {2: 4, 3: 16}[length]


@pytest.mark.parametrize("length", [1, 5, 41])
def test_a_length_of_one_mod_four_is_refused(length: int) -> None:
    _assert_raises(MalformedToken, "ERR_JWS_MALFORMED", b64decode, "A" * length)


# -- token segments ------------------------------------------------------------------------


def _refused_everywhere(token: str) -> None:
    """jws.verify, jwt.verify, a Verifier and jwt.peek all refuse ``token`` as malformed."""
    _assert_raises(MalformedToken, "ERR_JWS_MALFORMED", jws.verify, token, HS_KEY)
    _assert_raises(MalformedToken, "ERR_JWS_MALFORMED", jwt.verify, token, HS_KEY, now=NOW)
    _assert_raises(MalformedToken, "ERR_JWS_MALFORMED", Verifier(HS_KEY).verify, token)
    _assert_raises(MalformedToken, "ERR_JWS_MALFORMED", jwt.peek, token)


def test_non_canonical_header_is_refused_even_with_a_valid_mac() -> None:
    header = _segment({"alg": "HS256", "typ": "JWT", "x": 12})
    payload = _segment({"exp": EXP, "sub": "u"})
    assert jwt.verify(_hs256(header, payload), HS_KEY, now=NOW)["sub"] == "u"
    _refused_everywhere(_hs256(_respell(header), payload))


def test_non_canonical_payload_is_refused_even_with_a_valid_mac() -> None:
    header = _segment({"alg": "HS256"})
    payload = _segment({"exp": EXP, "sub": "u"})
    assert jwt.verify(_hs256(header, payload), HS_KEY, now=NOW)["sub"] == "u"
    _refused_everywhere(_hs256(header, _respell(payload)))


@pytest.mark.parametrize("which", ["header", "payload", "signature"])
def test_a_segment_of_length_one_mod_four_is_refused(which: str) -> None:
    parts = _hs256(_segment({"alg": "HS256"}), _segment({"exp": EXP, "sub": "u"})).split(".")
    index = ("header", "payload", "signature").index(which)
    parts[index] += "A" * ((1 - len(parts[index])) % 4)
    assert len(parts[index]) % 4 == 1
    token = ".".join(parts) if which == "signature" else _hs256(parts[0], parts[1])
    _assert_raises(MalformedToken, "ERR_JWS_MALFORMED", jws.verify, token, HS_KEY)
    _assert_raises(MalformedToken, "ERR_JWS_MALFORMED", jwt.verify, token, HS_KEY, now=NOW)


# -- JWK members ---------------------------------------------------------------------------

_RSA_MEMBERS = ("n", "d", "p", "q", "dp", "dq", "qi")


def _rsa_jwk_with_unused_bits() -> dict[str, str]:
    # RSA members are minimal big-endian integers (RFC 7518 §6.3): one whose byte length is a
    # multiple of 3 (d with a leading zero byte, ~1 key in 256) has no unused bits to respell.
    while True:
        jwk = Key.generate("RS256").to_jwk(private=True)
        if all(len(jwk[name]) % 4 in (2, 3) for name in _RSA_MEMBERS):
            return jwk


_PRIVATE_JWKS = {
    "oct": Key.from_secret(b"s" * 32).to_jwk(private=True),
    "RSA": _rsa_jwk_with_unused_bits(),
    "EC": Key.generate("ES256").to_jwk(private=True),
    "OKP": Key.generate("Ed25519").to_jwk(private=True),
}
# Every base64url member whose length leaves unused bits (RSA "e" = "AQAB" has none).
_MEMBERS = [
    ("oct", "k"),
    *(("RSA", name) for name in _RSA_MEMBERS),
    *(("EC", name) for name in ("x", "y", "d")),
    *(("OKP", name) for name in ("x", "d")),
]


@pytest.mark.parametrize(("kty", "member"), _MEMBERS)
def test_non_canonical_jwk_member_is_refused(kty: str, member: str) -> None:
    jwk = _PRIVATE_JWKS[kty]
    Key.from_jwk(jwk)  # the canonical spelling loads
    respelt = {**jwk, member: _respell(jwk[member])}
    _assert_raises(InvalidKey, "ERR_JWK_INVALID", Key.from_jwk, respelt)
    if member in ("n", "x", "y"):  # public members: the public key is refused as well
        public = {name: value for name, value in respelt.items() if name in "kty crv n e x y"}
        _assert_raises(InvalidKey, "ERR_JWK_INVALID", Key.from_jwk, public)
        # A set skips an unusable key (RFC 7517 §5): the respelt key is not in it.
        assert len(KeySet.from_jwks({"keys": [public]}, public_only=True)) == 0


@pytest.mark.parametrize(("kty", "member"), [("oct", "k"), ("RSA", "n"), ("EC", "x")])
def test_jwk_member_of_length_one_mod_four_is_refused(kty: str, member: str) -> None:
    jwk = _PRIVATE_JWKS[kty]
    value = jwk[member] + "A" * ((1 - len(jwk[member])) % 4)
    assert len(value) % 4 == 1
    _assert_raises(InvalidKey, "ERR_JWK_INVALID", Key.from_jwk, {**jwk, member: value})
