"""JWS security rules: alg handling, algorithm confusion, strict parsing, key selection."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from _assertions import assert_raises_code as _assert_raises
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from jotkit import (
    InvalidKey,
    InvalidSignature,
    Key,
    KeyMismatch,
    KeyNotFound,
    KeySet,
    MalformedToken,
    TokenTooLarge,
    UnsupportedAlgorithm,
    jws,
    jwt,
)
from jotkit.jose.b64 import b64decode, b64encode

SECRET = b"k" * 32
EXP = 2_000_000_000
NOW = 1_900_000_000


def _seg(obj: object) -> str:
    return b64encode(json.dumps(obj).encode())


def _raw_seg(text: str) -> str:
    return b64encode(text.encode())


def _lenient(text: str) -> bytes:
    """What a lenient decoder makes of ``text`` (the padding added, unused bits ignored)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _hs256(header_seg: str, payload_seg: str, secret: bytes = SECRET) -> str:
    signing_input = f"{header_seg}.{payload_seg}".encode()
    mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{header_seg}.{payload_seg}.{b64encode(mac)}"


@pytest.fixture(scope="module")
def hs_key() -> Key:
    return Key.from_secret(SECRET)


@pytest.fixture(scope="module")
def rsa_key() -> Key:
    return Key.generate("RS256")


@pytest.fixture(scope="module")
def es_key() -> Key:
    return Key.generate("ES256")


# -- alg "none" -------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", "c2ln"])
def test_alg_none_rejected_in_every_spelling(hs_key: Key, spelling: str, signature: str) -> None:
    token = f"{_seg({'alg': spelling})}.{_seg({'sub': 'u', 'exp': EXP})}.{signature}"
    _assert_raises(UnsupportedAlgorithm, "ERR_JOSE_ALG_UNSUPPORTED", jws.verify, token, hs_key)
    _assert_raises(
        UnsupportedAlgorithm, "ERR_JOSE_ALG_UNSUPPORTED", jwt.verify, token, hs_key, now=NOW
    )


def test_alg_none_rejected_even_when_allow_listed(hs_key: Key) -> None:
    token = f"{_seg({'alg': 'none'})}.{_seg({'exp': EXP})}."
    _assert_raises(
        UnsupportedAlgorithm,
        "ERR_JOSE_ALG_UNSUPPORTED",
        jws.verify,
        token,
        hs_key,
        algorithms=["none", "HS256"],
    )


# -- algorithm confusion ----------------------------------------------------------------------


def test_hs256_signed_with_rsa_public_pem_rejected_by_rsa_key(rsa_key: Key) -> None:
    public = rsa_key.public()
    pem = public.to_pem()
    token = _hs256(_seg({"alg": "HS256", "typ": "JWT"}), _seg({"sub": "u", "exp": EXP}), pem)
    _assert_raises(KeyMismatch, "ERR_JOSE_ALG_NOT_ALLOWED", jws.verify, token, public)
    _assert_raises(
        KeyMismatch, "ERR_JOSE_ALG_NOT_ALLOWED", jws.verify, token, public, algorithms=["HS256"]
    )
    _assert_raises(KeyMismatch, "ERR_JOSE_ALG_NOT_ALLOWED", jwt.verify, token, public, now=NOW)


def test_public_key_pem_cannot_become_hmac_secret(rsa_key: Key, es_key: Key) -> None:
    for pem in (rsa_key.public().to_pem(), rsa_key.to_pem(private=True), es_key.to_pem()):
        _assert_raises(InvalidKey, "ERR_JWK_INVALID", Key.from_secret, pem)


def test_hs256_token_against_ec_key_is_key_mismatch(es_key: Key) -> None:
    token = _hs256(_seg({"alg": "HS256"}), _seg({"exp": EXP}), es_key.public().to_pem())
    _assert_raises(KeyMismatch, "ERR_JOSE_ALG_NOT_ALLOWED", jws.verify, token, es_key.public())


def test_es256_bound_key_refuses_es384_token(es_key: Key) -> None:
    other = Key.generate("ES384", kid=es_key.kid)
    token = jws.sign(b"{}", other)
    _assert_raises(KeyMismatch, "ERR_JOSE_ALG_NOT_ALLOWED", jws.verify, token, es_key.public())


def test_rs256_allow_list_refuses_ps256_from_same_key(rsa_key: Key) -> None:
    unbound = Key.from_pem(rsa_key.to_pem(private=True))
    assert unbound.alg is None
    token = jws.sign(b"{}", unbound, alg="PS256")
    public = unbound.public()
    assert jws.verify(token, public).payload == b"{}"  # the key alone would accept it
    _assert_raises(
        KeyMismatch, "ERR_JOSE_ALG_NOT_ALLOWED", jws.verify, token, public, algorithms=["RS256"]
    )


def test_string_algorithms_is_a_one_element_list_not_a_substring(hs_key: Key) -> None:
    token = jws.sign(b"{}", hs_key)
    assert jws.verify(token, hs_key, algorithms="HS256").payload == b"{}"
    _assert_raises(
        KeyMismatch, "ERR_JOSE_ALG_NOT_ALLOWED", jws.verify, token, hs_key, algorithms="xHS256x"
    )
    _assert_raises(
        KeyMismatch, "ERR_JOSE_ALG_NOT_ALLOWED", jws.verify, token, hs_key, algorithms="RS256"
    )


# -- strict parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 4, 6])
def test_wrong_segment_count_rejected(hs_key: Key, count: int) -> None:
    good = jws.sign(b"{}", hs_key).split(".")
    parts = [*good, "e30", "e30", "e30"][:count]
    _assert_raises(MalformedToken, "ERR_JWS_MALFORMED", jws.verify, ".".join(parts), hs_key)


@pytest.mark.parametrize("junk", ["=", "==", "+", "/", " ", "\n", "\t"])
def test_non_strict_base64url_in_header_rejected(hs_key: Key, junk: str) -> None:
    header = _seg({"alg": "HS256"})
    token = _hs256(header[:4] + junk + header[4:], _seg({"exp": EXP}))
    _assert_raises(MalformedToken, "ERR_JWS_MALFORMED", jws.verify, token, hs_key)


@pytest.mark.parametrize("junk", ["=", "==", "+", "/", " ", "\n", "\t"])
def test_non_strict_base64url_in_payload_rejected(hs_key: Key, junk: str) -> None:
    # The MAC is valid over the tampered text, so only strict decoding can catch it.
    payload = _seg({"exp": EXP, "sub": "u"})
    token = _hs256(_seg({"alg": "HS256"}), payload[:4] + junk + payload[4:])
    _assert_raises(MalformedToken, "ERR_JWS_MALFORMED", jws.verify, token, hs_key)
    with pytest.raises(MalformedToken):
        jwt.verify(token, hs_key, now=NOW)


def test_malformed_payload_is_refused_before_the_signature_is_checked(es_key: Key) -> None:
    # The signature is garbage too: only checking the payload's encoding first names it.
    head, payload, sig = jws.sign(b"{}", es_key).split(".")
    token = f"{head}.{payload}+.{sig[::-1]}"
    _assert_raises(MalformedToken, "ERR_JWS_MALFORMED", jws.verify, token, es_key.public())
    _assert_raises(
        MalformedToken, "ERR_JWS_MALFORMED", jws.verify, token, KeySet([es_key.public()])
    )


@pytest.mark.parametrize("junk", ["=", "==", "+", "/", " ", "\n"])
def test_non_strict_base64url_in_signature_rejected(es_key: Key, hs_key: Key, junk: str) -> None:
    token = jws.sign(b"{}", es_key)
    head, payload, sig = token.split(".")
    bad = f"{head}.{payload}.{sig[:4]}{junk}{sig[4:]}"
    _assert_raises(MalformedToken, "ERR_JWS_MALFORMED", jws.verify, bad, es_key.public())
    head, payload, sig = jws.sign(b"{}", hs_key).split(".")
    for bad in (f"{head}.{payload}.{sig}{junk}", f"{head}.{payload}.{sig[:4]}{junk}{sig[4:]}"):
        _assert_raises(MalformedToken, "ERR_JWS_MALFORMED", jws.verify, bad, hs_key)


@pytest.mark.parametrize("which", ["es", "hs"])
def test_non_canonical_signature_spelling_rejected(es_key: Key, hs_key: Key, which: str) -> None:
    # ES256: 64 bytes -> 86 characters, HS256: 32 bytes -> 43; either way the last character
    # carries unused bits, and flipping one spells the same signature another way.
    key = es_key if which == "es" else hs_key
    head, payload, sig = jws.sign(b"{}", key).split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    tweaked = sig[:-1] + alphabet[alphabet.index(sig[-1]) ^ 1]
    token = f"{head}.{payload}.{tweaked}"
    assert _lenient(tweaked) == b64decode(sig)  # what makes it a second spelling
    verifier = key.public() if which == "es" else key
    _assert_raises(InvalidSignature, "ERR_JWS_SIGNATURE_INVALID", jws.verify, token, verifier)


@pytest.mark.parametrize("header", ["[]", '["alg","HS256"]', '"HS256"', "1", "null", "true"])
def test_header_not_an_object_rejected(hs_key: Key, header: str) -> None:
    token = _hs256(_raw_seg(header), _seg({"exp": EXP}))
    _assert_raises(MalformedToken, "ERR_JWS_MALFORMED", jws.verify, token, hs_key)


@pytest.mark.parametrize("header", ["{}", '{"alg":1}', '{"alg":null}', '{"alg":["HS256"]}'])
def test_header_without_string_alg_rejected(hs_key: Key, header: str) -> None:
    token = _hs256(_raw_seg(header), _seg({"exp": EXP}))
    _assert_raises(MalformedToken, "ERR_JWS_MALFORMED", jws.verify, token, hs_key)


@pytest.mark.parametrize(
    "header",
    [
        '{"alg":"HS256","alg":"HS256"}',
        '{"alg":"HS256","alg":"none"}',
        '{"alg":"none","alg":"HS256"}',
        '{"alg":"HS256","kid":"a","kid":"b"}',
    ],
)
def test_duplicate_header_member_names_rejected(hs_key: Key, header: str) -> None:
    token = _hs256(_raw_seg(header), _seg({"exp": EXP}))
    _assert_raises(MalformedToken, "ERR_JWS_MALFORMED", jws.verify, token, hs_key)


def test_crit_header_rejected(hs_key: Key) -> None:
    for crit in (["exp"], [], "b64"):
        token = _hs256(_seg({"alg": "HS256", "crit": crit, "exp": 1}), _seg({"exp": EXP}))
        _assert_raises(MalformedToken, "ERR_JOSE_CRIT_UNSUPPORTED", jws.verify, token, hs_key)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_infinity_in_header_rejected(hs_key: Key, constant: str) -> None:
    token = _hs256(_raw_seg('{"alg":"HS256","x":' + constant + "}"), _seg({"exp": EXP}))
    _assert_raises(MalformedToken, "ERR_JWS_MALFORMED", jws.verify, token, hs_key)


@pytest.mark.parametrize("payload", [b"[]", b'["exp",1]', b'"claims"', b"123", b"null", b"true"])
def test_payload_not_an_object_rejected(hs_key: Key, payload: bytes) -> None:
    token = jws.sign(payload, hs_key)
    _assert_raises(MalformedToken, "ERR_JWT_CLAIMS_INVALID", jwt.verify, token, hs_key, now=NOW)


def test_non_ascii_token_rejected(hs_key: Key) -> None:
    token = jws.sign(b"{}", hs_key)
    for bad in (token + "é", "é" + token, token[:5] + "\u00a0" + token[5:]):
        _assert_raises(MalformedToken, "ERR_JWS_MALFORMED", jws.verify, bad, hs_key)
    _assert_raises(MalformedToken, "ERR_JWS_MALFORMED", jws.verify, (token + "é").encode(), hs_key)


def test_token_over_size_cap_rejected(hs_key: Key) -> None:
    big = jwt.sign({"exp": EXP, "pad": "x" * 8192}, hs_key)
    assert len(big) > 8192
    _assert_raises(TokenTooLarge, "ERR_JWS_TOO_LARGE", jws.verify, big, hs_key)
    _assert_raises(TokenTooLarge, "ERR_JWS_TOO_LARGE", jwt.verify, big, hs_key, now=NOW)
    _assert_raises(TokenTooLarge, "ERR_JWS_TOO_LARGE", jws.verify, "a" * 10_000, hs_key)
    assert jwt.verify(big, hs_key, now=NOW, max_token_bytes=len(big))["pad"] == "x" * 8192


def test_size_cap_is_configurable(hs_key: Key) -> None:
    token = jwt.sign({"exp": EXP}, hs_key)
    assert jws.verify(token, hs_key, max_token_bytes=len(token))
    _assert_raises(
        TokenTooLarge,
        "ERR_JWS_TOO_LARGE",
        jws.verify,
        token,
        hs_key,
        max_token_bytes=len(token) - 1,
    )


@pytest.mark.parametrize("token", [None, 123, 1.5, ["a.b.c"], {"a": 1}, object()])
def test_non_string_token_rejected(hs_key: Key, token: object) -> None:
    _assert_raises(MalformedToken, "ERR_JWS_MALFORMED", jws.verify, token, hs_key)
    _assert_raises(MalformedToken, "ERR_JWS_MALFORMED", jwt.verify, token, hs_key, now=NOW)


# -- embedded keys never select a key ---------------------------------------------------------


def test_embedded_jwk_header_is_ignored(es_key: Key) -> None:
    attacker = Key.generate("ES256", kid=es_key.kid)
    token = jwt.sign(
        {"sub": "admin", "exp": EXP}, attacker, header={"jwk": attacker.public().to_jwk()}
    )
    _assert_raises(
        InvalidSignature, "ERR_JWS_SIGNATURE_INVALID", jwt.verify, token, es_key.public(), now=NOW
    )
    _assert_raises(
        InvalidSignature,
        "ERR_JWS_SIGNATURE_INVALID",
        jwt.verify,
        token,
        KeySet([es_key.public()]),
        now=NOW,
    )


@pytest.mark.parametrize("member", ["jku", "x5u", "x5c"])
def test_jku_x5u_x5c_headers_never_select_a_key(es_key: Key, member: str) -> None:
    attacker = Key.generate("ES256")
    value: object = ["MIIB"] if member == "x5c" else "https://attacker.example/keys"
    token = jwt.sign({"exp": EXP}, attacker, header={member: value, "kid": None})
    _assert_raises(
        InvalidSignature, "ERR_JWS_SIGNATURE_INVALID", jwt.verify, token, es_key.public(), now=NOW
    )


def test_attacker_kid_not_in_keyset_is_key_not_found(es_key: Key) -> None:
    attacker = Key.generate("ES256", kid="attacker")
    token = jwt.sign({"exp": EXP}, attacker, header={"jwk": attacker.public().to_jwk()})
    _assert_raises(
        KeyNotFound,
        "ERR_JWKS_NO_MATCHING_KEY",
        jwt.verify,
        token,
        KeySet([es_key.public()]),
        now=NOW,
    )


def test_kid_selects_only_among_callers_keys() -> None:
    a = Key.generate("ES256", kid="a")
    b = Key.generate("ES256", kid="b")
    keys = KeySet([a.public(), b.public()])
    assert jwt.verify(jwt.sign({"exp": EXP, "sub": "a"}, a), keys, now=NOW)["sub"] == "a"
    assert jwt.verify(jwt.sign({"exp": EXP, "sub": "b"}, b), keys, now=NOW)["sub"] == "b"
    # b's signature labelled with a's kid: only a's key is tried.
    forged = jwt.sign({"exp": EXP}, b, header={"kid": "a"})
    _assert_raises(InvalidSignature, "ERR_JWS_SIGNATURE_INVALID", jwt.verify, forged, keys, now=NOW)
    stranger = jwt.sign({"exp": EXP}, Key.generate("ES256", kid="c"))
    _assert_raises(KeyNotFound, "ERR_JWKS_NO_MATCHING_KEY", jwt.verify, stranger, keys, now=NOW)


def test_kid_less_keyset_tries_every_candidate_under_a_remembered_header() -> None:
    a, b = (Key.from_pem(Key.generate("ES256").to_pem(private=True)) for _ in range(2))
    keys = KeySet([a.public(), b.public()])
    by_a, by_b = jwt.sign({"exp": EXP, "sub": "a"}, a), jwt.sign({"exp": EXP, "sub": "b"}, b)
    assert by_a.split(".")[0] == by_b.split(".")[0]  # one header text for both keys
    assert jwt.verify(by_a, keys, now=NOW)["sub"] == "a"  # remembers the header's route
    assert jwt.verify(by_b, keys, now=NOW)["sub"] == "b"  # ...which still holds both keys
    stranger = Key.from_pem(Key.generate("ES256").to_pem(private=True))
    forged = jwt.sign({"exp": EXP}, stranger)
    _assert_raises(InvalidSignature, "ERR_JWS_SIGNATURE_INVALID", jwt.verify, forged, keys, now=NOW)


# -- ECDSA ------------------------------------------------------------------------------------


def test_ecdsa_psychic_signature_rejected(es_key: Key) -> None:
    head, payload, _ = jwt.sign({"exp": EXP}, es_key).split(".")
    for sig in (bytes(64), bytes(32) + b"\x01" * 32, b"\x01" * 32 + bytes(32)):
        token = f"{head}.{payload}.{b64encode(sig)}"
        _assert_raises(
            InvalidSignature, "ERR_JWS_SIGNATURE_INVALID", jws.verify, token, es_key.public()
        )


def test_ecdsa_der_signature_rejected(es_key: Key) -> None:
    head, payload, _ = jwt.sign({"exp": EXP}, es_key).split(".")
    der = es_key.jws_sign_material.sign(f"{head}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    assert der[0] == 0x30
    token = f"{head}.{payload}.{b64encode(der)}"
    _assert_raises(
        InvalidSignature, "ERR_JWS_SIGNATURE_INVALID", jws.verify, token, es_key.public()
    )


def test_tampered_payload_rejected(es_key: Key, hs_key: Key) -> None:
    for key, verifier in ((es_key, es_key.public()), (hs_key, hs_key)):
        head, _, sig = jwt.sign({"exp": EXP, "sub": "u"}, key).split(".")
        token = f"{head}.{_seg({'exp': EXP, 'sub': 'admin'})}.{sig}"
        _assert_raises(InvalidSignature, "ERR_JWS_SIGNATURE_INVALID", jws.verify, token, verifier)


def test_header_cannot_override_alg_on_sign(hs_key: Key) -> None:
    for alg in ("none", "HS512", "RS256", None):
        _assert_raises(
            KeyMismatch, "ERR_JOSE_ALG_NOT_ALLOWED", jws.sign, b"{}", hs_key, header={"alg": alg}
        )
    with pytest.raises(MalformedToken):
        jws.sign(b"{}", hs_key, header={"crit": ["x"]})
