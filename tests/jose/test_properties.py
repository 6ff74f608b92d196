"""Property tests: round trips; junk, mutations and hostile headers raise only JoseError."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jotkit import JoseError, Key, Verifier, jws, jwt
from jotkit.jose.b64 import b64encode
from jotkit.jose.claims import SECRET_CLAIM_NAMES

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BIG = 1 << 20  # a token-size cap that never gets in the way of the property under test

KEYS = {alg: Key.generate(alg) for alg in ("HS256", "ES256", "Ed25519")}
HS_KEY = Key.from_secret(os.urandom(32), alg="HS256")  # no kid: a header kid is never checked


def _exp() -> int:
    return int(time.time()) + 3600


# -- strategies ----------------------------------------------------------------------------

_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)  # no lone surrogates
_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
)
json_values = st.recursive(
    _json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=20,
)
_RESERVED = {"aud", "nbf", "iat", "exp"}
claim_names = _text.filter(
    lambda n: n not in _RESERVED and n.lower().replace("-", "_") not in SECRET_CLAIM_NAMES
)
claims_dicts = st.dictionaries(claim_names, json_values, max_size=8)


# -- (1) sign -> verify round trip ---------------------------------------------------------


@pytest.mark.parametrize("alg", sorted(KEYS))
@SETTINGS
@given(claims=claims_dicts)
def test_sign_verify_round_trips_json_claims(alg: str, claims: dict[str, Any]) -> None:
    key = KEYS[alg]
    claims = {**claims, "exp": _exp()}
    token = jwt.sign(claims, key)
    verify_key = key if key.kty == "oct" else key.public()
    assert jwt.verify(token, verify_key, max_token_bytes=BIG) == claims
    assert Verifier(verify_key, max_token_bytes=BIG).verify(token) == claims


# -- (2) junk input raises only JoseError --------------------------------------------------


def _only_jose_errors(token: Any) -> None:
    for alg in ("HS256", "ES256"):
        key = KEYS[alg] if alg == "HS256" else KEYS[alg].public()
        calls = (
            lambda k=key: jwt.verify(token, k),
            lambda k=key: jws.verify(token, k),
            lambda k=key: Verifier(k).verify(token),
            lambda k=key: jwt.verify(token, k, max_token_bytes=BIG),
        )
        for call in calls:
            with pytest.raises(JoseError):
                call()


@SETTINGS
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_jose_error(data: bytes) -> None:
    _only_jose_errors(data)


@SETTINGS
@given(text=st.text(max_size=300))
def test_arbitrary_text_raises_only_jose_error(text: str) -> None:
    _only_jose_errors(text)


_b64ish = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. ",
    max_size=80,
)


@SETTINGS
@given(parts=st.lists(_b64ish, min_size=1, max_size=5))
def test_token_shaped_junk_raises_only_jose_error(parts: list[str]) -> None:
    _only_jose_errors(".".join(parts))


# -- (3) one-character mutations of a valid token ------------------------------------------

_MUTATION_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. \n\x00é"


@pytest.mark.parametrize("alg", sorted(KEYS))
@SETTINGS
@given(data=st.data())
def test_mutated_token_is_rejected(alg: str, data: st.DataObject) -> None:
    key = KEYS[alg]
    verify_key = key if key.kty == "oct" else key.public()
    token = jwt.sign({"sub": "u", "exp": _exp()}, key)
    op = data.draw(st.sampled_from(["replace", "insert", "delete"]))
    if op == "insert":
        i = data.draw(st.integers(0, len(token)))
        mutated = token[:i] + data.draw(st.sampled_from(_MUTATION_CHARS)) + token[i:]
    else:
        i = data.draw(st.integers(0, len(token) - 1))
        char = "" if op == "delete" else data.draw(st.sampled_from(_MUTATION_CHARS))
        mutated = token[:i] + char + token[i + 1 :]
    if mutated == token:
        assert jwt.verify(mutated, verify_key)["sub"] == "u"
        return
    with pytest.raises(JoseError):
        jwt.verify(mutated, verify_key)
    with pytest.raises(JoseError):
        jws.verify(mutated, verify_key)
    with pytest.raises(JoseError):
        Verifier(verify_key).verify(mutated)


def test_every_single_char_replacement_of_the_signature_tail_is_rejected() -> None:
    """Exhaustive over the last signature char: no second spelling of a signature verifies."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for key in KEYS.values():
        verify_key = key if key.kty == "oct" else key.public()
        token = jwt.sign({"sub": "u", "exp": _exp()}, key)
        for char in alphabet:
            mutated = token[:-1] + char
            if mutated == token:
                continue
            with pytest.raises(JoseError):
                jwt.verify(mutated, verify_key)


# -- (4) hostile headers over a correct HMAC -----------------------------------------------

_WEIRD_ALGS = st.sampled_from(
    [
        "none",
        "NONE",
        "nOnE",
        "None",
        "",
        "HS256",
        "hs256",
        "HS256 ",
        " HS256",
        "HS384",
        "RS256",
        "ES256",
        "EdDSA",
        "HS256\x00",
        0,
        1,
        256,
        1.5,
        True,
        False,
        None,
        [],
        ["HS256"],
        {"alg": "HS256"},
    ]
)
_header_names = (
    st.sampled_from(
        ["alg", "crit", "kid", "typ", "cty", "b64", "jwk", "jku", "x5c", "x5u", "zip", "enc", "epk"]
    )
    | _text
)
_any_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN/Infinity included: json.dumps writes them, jotkit must refuse them
    | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=25,
)


@st.composite
def headers(draw: st.DrawFn) -> dict[str, Any]:
    header = draw(st.dictionaries(_header_names, _any_json, max_size=6))
    choice = draw(st.sampled_from(["plain", "weird", "json", "absent", "keep"]))
    if choice == "plain":  # exercise the accepting path too
        for name in ("crit", "kid", "typ", "cty", "b64"):
            header.pop(name, None)
        header["alg"] = "HS256"
    elif choice == "weird":
        header["alg"] = draw(_WEIRD_ALGS)
    elif choice == "json":
        header["alg"] = draw(_any_json)
    elif choice == "absent":
        header.pop("alg", None)
    return header


def _hand_signed(header_json: bytes, payload_json: bytes, secret: bytes) -> str:
    signing_input = f"{b64encode(header_json)}.{b64encode(payload_json)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64encode(mac)}"


# Header members that only a JWE has (RFC 7516, RFC 7518 §4): refused on the JWS path.
_JWE_MEMBERS = {"enc", "zip", "epk", "apu", "apv", "iv", "tag", "p2s", "p2c"}
_REFUSED_MEMBERS = {"crit", "kid", "typ", "cty", "b64"} | _JWE_MEMBERS
SECRET = os.urandom(32)
HS_NO_KID = Key.from_secret(SECRET, alg="HS256")


@SETTINGS
@given(header=headers())
def test_hostile_headers_are_refused_unless_plain_hs256(header: dict[str, Any]) -> None:
    claims = {"sub": "u", "exp": _exp()}
    token = _hand_signed(json.dumps(header).encode(), json.dumps(claims).encode(), SECRET)
    try:
        result = jwt.verify(token, HS_NO_KID, max_token_bytes=BIG)
    except JoseError:
        plain = (
            header.get("alg") == "HS256"
            and type(header.get("alg")) is str
            and not (_REFUSED_MEMBERS & header.keys())
        )
        # A header with nothing but a string alg "HS256" and unknown extras must be accepted
        # (NaN/Infinity anywhere in it is the only other reason to refuse).
        if plain and "NaN" not in json.dumps(header) and "Infinity" not in json.dumps(header):
            raise
        return
    assert type(header.get("alg")) is str and header["alg"] == "HS256"
    assert not ({"crit"} | _JWE_MEMBERS) & header.keys()
    assert result == claims


@pytest.mark.parametrize("where", ["header", "payload"])
def test_deeply_nested_json_raises_jose_error(where: str) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    header = b'{"alg":"HS256","x":' + deep.encode() + b"}"
    payload = b'{"exp":' + str(_exp()).encode() + b',"x":' + deep.encode() + b"}"
    if where == "header":
        payload = json.dumps({"sub": "u", "exp": _exp()}).encode()
    else:
        header = b'{"alg":"HS256"}'
    token = _hand_signed(header, payload, SECRET)
    for cap in (BIG, 8192):
        with pytest.raises(JoseError):
            jwt.verify(token, HS_NO_KID, max_token_bytes=cap)
        with pytest.raises(JoseError):
            Verifier(HS_NO_KID, max_token_bytes=cap).verify(token)
    if where == "header":
        with pytest.raises(JoseError):
            jws.verify(token, HS_NO_KID, max_token_bytes=BIG)
    else:
        # jws.verify never parses the payload: it is authentic bytes to it.
        assert jws.verify(token, HS_NO_KID, max_token_bytes=BIG).payload == payload


def test_bare_deep_array_header_and_payload_raise_jose_error() -> None:
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    for header, payload in ((deep, b'{"exp":1}'), (b'{"alg":"HS256"}', deep)):
        token = _hand_signed(header, payload, SECRET)
        with pytest.raises(JoseError):
            jwt.verify(token, HS_NO_KID, max_token_bytes=BIG)
