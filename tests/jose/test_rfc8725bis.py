"""RFC 8725bis cases: "alg" compared case-sensitively, and nothing but a compact JWS on the
JWS path (no JWE, no JSON serialization, no JWE header members such as "zip")."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from _assertions import assert_raises_code as _assert_raises

from jotkit import InvalidKey, Key, MalformedToken, UnsupportedAlgorithm, Verifier, jws, jwt
from jotkit.jose.b64 import b64encode

SECRET = b"k" * 32
HS_KEY = Key.from_secret(SECRET)
EXP = 2_000_000_000
NOW = 1_900_000_000
CLAIMS = {"sub": "u", "exp": EXP}


def _segment(obj: object) -> str:
    return b64encode(json.dumps(obj).encode())


def _hs256(header: dict[str, object], claims: dict[str, object] = CLAIMS) -> str:
    """A token whose HMAC is correct over exactly this header: only the header can fail."""
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    mac = hmac.new(SECRET, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64encode(mac)}"


def _refused(exc_type: type[Exception], code: str, token: str | bytes) -> None:
    """Every verify entry point (and peek, for shapes) refuses ``token`` with ``code``."""
    _assert_raises(exc_type, code, jws.verify, token, HS_KEY)
    _assert_raises(exc_type, code, jwt.verify, token, HS_KEY, now=NOW)
    _assert_raises(exc_type, code, Verifier(HS_KEY, clock=lambda: NOW).verify, token)


# -- "alg" is case-sensitive (RFC 7515 §4.1.1) ---------------------------------------------


@pytest.mark.parametrize("spelling", ["none", "None", "NONE", "noNE", "nOnE"])
def test_every_spelling_of_none_is_refused_with_one_code(spelling: str) -> None:
    for signature in ("", b64encode(b"sig")):
        token = f"{_segment({'alg': spelling})}.{_segment(CLAIMS)}.{signature}"
        _refused(UnsupportedAlgorithm, "ERR_JOSE_ALG_UNSUPPORTED", token)
    # A caller cannot allow-list it back in, in any case either.
    token = f"{_segment({'alg': spelling})}.{_segment(CLAIMS)}."
    _assert_raises(
        UnsupportedAlgorithm,
        "ERR_JOSE_ALG_UNSUPPORTED",
        jws.verify,
        token,
        HS_KEY,
        algorithms=[spelling, "HS256"],
    )


@pytest.mark.parametrize("spelling", ["hs256", "Hs256", "hS256", "HS256 ", "HS-256"])
def test_an_algorithm_in_another_case_is_not_that_algorithm(spelling: str) -> None:
    # The MAC is right: a verifier that folded case would accept this token.
    token = _hs256({"alg": spelling})
    _refused(UnsupportedAlgorithm, "ERR_JOSE_ALG_UNSUPPORTED", token)
    _assert_raises(
        UnsupportedAlgorithm,
        "ERR_JOSE_ALG_UNSUPPORTED",
        jws.verify,
        token,
        HS_KEY,
        algorithms=[spelling],
    )
    assert jwt.verify(_hs256({"alg": "HS256"}), HS_KEY, now=NOW) == CLAIMS


def test_a_key_bound_to_an_algorithm_in_another_case_is_refused() -> None:
    jwk = {**HS_KEY.to_jwk(private=True), "alg": "hs256"}
    _assert_raises(InvalidKey, "ERR_JWK_INVALID", Key.from_jwk, jwk)


# -- only the compact JWS serialization ----------------------------------------------------

_JWE = ".".join(
    [
        _segment({"alg": "RSA-OAEP-256", "enc": "A256GCM"}),
        b64encode(b"\x01" * 256),  # encrypted key
        b64encode(b"\x02" * 12),  # IV
        b64encode(b"\x03" * 40),  # ciphertext
        b64encode(b"\x04" * 16),  # tag
    ]
)


@pytest.mark.parametrize("token", [_JWE, "a.b.c.d.e", "...."])
def test_a_jwe_given_to_verify_is_named_as_such(token: str) -> None:
    _refused(MalformedToken, "ERR_JWE_NOT_SUPPORTED", token)
    _refused(MalformedToken, "ERR_JWE_NOT_SUPPORTED", token.encode())
    _assert_raises(MalformedToken, "ERR_JWE_NOT_SUPPORTED", jwt.peek, token)


def _json_serializations() -> list[str]:
    header, payload, signature = _hs256({"alg": "HS256"}).split(".")
    general = {"payload": payload, "signatures": [{"protected": header, "signature": signature}]}
    flattened = {"payload": payload, "protected": header, "signature": signature}
    # Exactly two dots, so that a naive split finds three "segments".
    two_dots = {**flattened, "header": {"kid": "a.b.c"}}
    return [
        json.dumps(general),
        json.dumps(flattened),
        json.dumps(two_dots),
        "  \n" + json.dumps(flattened, indent=2),
    ]


@pytest.mark.parametrize("token", _json_serializations())
def test_a_json_serialized_jws_given_to_verify_is_named_as_such(token: str) -> None:
    _refused(MalformedToken, "ERR_JWS_JSON_SERIALIZATION", token)
    _assert_raises(MalformedToken, "ERR_JWS_JSON_SERIALIZATION", jwt.peek, token)


# -- no JWE header member on the JWS path --------------------------------------------------


@pytest.mark.parametrize(
    "member",
    [
        {"zip": "DEF"},
        {"enc": "A256GCM"},
        {"epk": {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}},
        {"apu": "QQ", "apv": "Qg"},
        {"iv": "AAAA", "tag": "AAAA"},
        {"p2s": "AAAA", "p2c": 1000},
    ],
)
def test_jwe_header_members_are_refused_on_the_jws_path(member: dict[str, object]) -> None:
    token = _hs256({"alg": "HS256", **member})
    _refused(MalformedToken, "ERR_JWE_NOT_SUPPORTED", token)
    # Nor can jotkit be made to sign one into a JWS.
    _assert_raises(MalformedToken, "ERR_JWE_NOT_SUPPORTED", jws.sign, b"{}", HS_KEY, header=member)
    _assert_raises(MalformedToken, "ERR_JWE_NOT_SUPPORTED", jwt.sign, CLAIMS, HS_KEY, header=member)
