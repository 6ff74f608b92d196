"""Fuzz properties over the parser, the JWK importer and the verifier: whatever goes in,
the only exception that comes out is a JoseError. Bounded (a few seconds a property); the
open-ended run is the atheris target, fuzz/fuzz_jose.py (`make fuzz`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jotkit import JoseError, Key, KeySet, Verifier, jws, jwt
from jotkit.jose.b64 import b64decode, b64encode
from jotkit.jose.jws import decode_header

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
SECRET = b"f" * 32
HS_KEY = Key.from_secret(SECRET, alg="HS256")
KEYS = [Key.generate(alg) for alg in ("ES256", "Ed25519", "RS256")]
JWKS = [key.to_jwk(private=True) for key in KEYS] + [HS_KEY.to_jwk(private=True)]
VERIFIERS: list[Key | KeySet] = [HS_KEY, KEYS[0].public(), KeySet([key.public() for key in KEYS])]

_b64ish = st.text(alphabet=ALPHABET + '+/=. {}"\n', max_size=60)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)


def _only_jose_errors(call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call``'s result, or None when it raised a JoseError; anything else fails the test."""
    try:
        return call(*args, **kwargs)
    except JoseError:
        return None


# -- the parser ----------------------------------------------------------------------------


@SETTINGS
@given(text=st.text(alphabet=ALPHABET, max_size=40))
def test_base64url_decodes_exactly_its_canonical_spellings(text: str) -> None:
    decoded = _only_jose_errors(b64decode, text)
    # Canonical means: decoding succeeds if and only if re-encoding gives the text back.
    lenient_ok = len(text) % 4 != 1
    if decoded is None:
        assert not lenient_ok or b64encode(_lenient(text)) != text
    else:
        assert b64encode(decoded) == text


def _lenient(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@SETTINGS
@given(data=st.binary(max_size=64))
def test_base64url_round_trips_bytes(data: bytes) -> None:
    assert b64decode(b64encode(data)) == data


@SETTINGS
@given(segment=_b64ish | st.binary(max_size=60) | st.builds(lambda v: _seg(v), _json))
def test_header_decoding_raises_only_jose_errors(segment: str | bytes) -> None:
    header = _only_jose_errors(decode_header, segment)
    assert header is None or type(header) is dict


@SETTINGS
@given(parts=st.lists(_b64ish | st.builds(lambda v: _seg(v), _json), min_size=1, max_size=6))
def test_peek_raises_only_jose_errors(parts: list[str]) -> None:
    result = _only_jose_errors(jwt.peek, ".".join(parts))
    assert result is None or len(parts) == 3


def _seg(value: Any) -> str:
    try:
        return b64encode(json.dumps(value).encode())
    except (ValueError, TypeError):
        return "e30"


# -- the JWK importer ----------------------------------------------------------------------


@SETTINGS
@given(jwk=st.dictionaries(st.sampled_from(["kty", "crv", "alg", "use", "kid"]), _json))
def test_arbitrary_jwk_objects_raise_only_jose_errors(jwk: dict[str, Any]) -> None:
    _only_jose_errors(Key.from_jwk, jwk)


@st.composite
def mutated_jwks(draw: st.DrawFn) -> dict[str, Any]:
    """A valid private JWK with members replaced, dropped or added."""
    jwk = dict(draw(st.sampled_from(JWKS)))
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from([*jwk, "d", "p", "oth", "key_ops", "use", "alg", "crv"]))
        action = draw(st.sampled_from(["replace", "drop", "truncate", "json"]))
        if action == "drop":
            jwk.pop(name, None)
        elif action == "truncate" and isinstance(jwk.get(name), str):
            jwk[name] = jwk[name][: draw(st.integers(0, len(jwk[name])))]
        elif action == "json":
            jwk[name] = draw(_json)
        else:
            jwk[name] = draw(_b64ish)
    return jwk


@SETTINGS
@given(jwk=mutated_jwks())
def test_mutated_jwks_raise_only_jose_errors(jwk: dict[str, Any]) -> None:
    key = _only_jose_errors(Key.from_jwk, jwk)
    if key is not None:  # a key that loads exports and signs like any other
        assert key.to_jwk(private=True)["kty"] == jwk["kty"]


@SETTINGS
@given(keys=st.lists(mutated_jwks() | _json, max_size=4), public_only=st.booleans())
def test_key_sets_raise_only_jose_errors(keys: list[Any], public_only: bool) -> None:
    document = {"keys": keys}
    _only_jose_errors(KeySet.from_jwks, document, public_only=public_only)
    _only_jose_errors(KeySet.from_jwks, json.dumps(document, default=str))


@SETTINGS
@given(data=st.binary(max_size=200))
def test_pem_and_der_junk_raise_only_jose_errors(data: bytes) -> None:
    _only_jose_errors(Key.from_der, data)
    _only_jose_errors(Key.from_pem, b"-----BEGIN PUBLIC KEY-----\n" + data)


# -- the verifier --------------------------------------------------------------------------


def _mac(header: str, payload: str) -> str:
    signing_input = f"{header}.{payload}".encode()
    return b64encode(hmac.new(SECRET, signing_input, hashlib.sha256).digest())


@st.composite
def tokens(draw: st.DrawFn) -> str:
    """Tokens from a few segment kinds: JSON of anything, junk, and the real MAC, so that
    hostile headers and claims also reach the stages after the signature."""
    header = draw(
        st.builds(lambda v: _seg(v), _json)
        | st.builds(
            lambda extra: _seg({"alg": "HS256", **extra}),
            st.dictionaries(st.sampled_from(["kid", "typ", "crit", "zip", "b64", "x"]), _json),
        )
        | _b64ish
    )
    payload = draw(st.builds(lambda v: _seg(v), _json | st.just({"exp": 2**31})) | _b64ish)
    signature = draw(st.just(_mac(header, payload)) | _b64ish)
    extra = draw(st.lists(_b64ish, max_size=2))
    return ".".join([header, payload, signature, *extra])


@SETTINGS
@given(token=tokens(), as_bytes=st.booleans())
def test_the_verifiers_raise_only_jose_errors(token: str, as_bytes: bool) -> None:
    presented: str | bytes = token.encode() if as_bytes else token
    for keys in VERIFIERS:
        result = _only_jose_errors(jws.verify, presented, keys)
        if result is not None:  # only the real MAC over a plain HS256 header gets through
            assert keys is HS_KEY and result.header["alg"] == "HS256"
        _only_jose_errors(jwt.verify, presented, keys)
        _only_jose_errors(Verifier(keys).verify, presented)


@pytest.mark.parametrize("value", [None, 0, 1.5, [], {}, object(), bytearray(b"a.b.c")])
def test_values_that_are_not_tokens_raise_only_jose_errors(value: Any) -> None:
    for keys in VERIFIERS:
        with pytest.raises(JoseError):
            jws.verify(value, keys)
        with pytest.raises(JoseError):
            jwt.verify(value, keys)
        with pytest.raises(JoseError):
            Verifier(keys).verify(value)
