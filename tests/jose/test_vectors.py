"""The published JOSE examples: RFC 7515 appendix A, RFC 7520 section 4, RFC 8037 appendix A
and RFC 7638 section 3.1, kept as data under tests/vectors/."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from jotkit import JoseError, Key, UnsupportedAlgorithm, jws

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth"})


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    assert data["source"].startswith("RFC ")
    return data


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _public_jwk(jwk: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in jwk.items() if name not in PRIVATE_MEMBERS}


def _verification_key(jwk: dict[str, Any]) -> Key:
    """An HMAC secret verifies as itself; any other key through its public JWK only."""
    return Key.from_jwk(jwk if jwk["kty"] == "oct" else _public_jwk(jwk))


RFC7515 = _load("rfc7515_appendix_a.json")
RFC7520 = _load("rfc7520_section4.json")
RFC8037 = _load("rfc8037_appendix_a.json")
RFC7638 = _load("rfc7638_section3_1.json")

EXAMPLES: list[tuple[str, dict[str, Any], str]] = [
    (f"RFC7515-{example['id']}-{example['alg']}", example, example["payload"])
    for example in RFC7515["examples"]
] + [
    (f"RFC7520-{example['id']}-{example['alg']}", example, RFC7520["payload"])
    for example in RFC7520["examples"]
]
CASES = [pytest.param(example, payload, id=case_id) for case_id, example, payload in EXAMPLES]


def _reproducible(example: dict[str, Any]) -> bool:
    """Whether jws.sign can rebuild the exact token: a deterministic algorithm, and a header
    that jotkit's compact {"alg", "kid"} serialization spells the same way (RFC 7515 A.1's
    header has "typ" first and CRLF whitespace, which no compact serializer reproduces)."""
    return bool(example["deterministic"]) and "\r\n" not in example["protected_header"]


REPRODUCIBLE = [
    pytest.param(example, payload, id=case_id)
    for case_id, example, payload in EXAMPLES
    if _reproducible(example)
]


# -- the vectors themselves are what the RFCs print --------------------------------------------


@pytest.mark.parametrize(("example", "payload"), CASES)
def test_vector_segments_decode_to_the_rfc_header_and_payload(
    example: dict[str, Any], payload: str
) -> None:
    header_segment, payload_segment, _ = example["jws"].split(".")
    assert _b64url(header_segment) == example["protected_header"].encode()
    assert _b64url(payload_segment) == payload.encode()


def test_rfc7520_payload_segment_is_the_published_one() -> None:
    assert _b64url(RFC7520["payload_b64"]) == RFC7520["payload"].encode()
    for example in RFC7520["examples"]:
        assert example["jws"].split(".")[1] == RFC7520["payload_b64"]


# -- verification -------------------------------------------------------------------------------


@pytest.mark.parametrize(("example", "payload"), CASES)
def test_rfc_jws_verifies_with_the_public_key(example: dict[str, Any], payload: str) -> None:
    key = _verification_key(example["jwk"])
    assert not key.is_private or key.kty == "oct"
    verified = jws.verify(example["jws"], key, algorithms=[example["alg"]])
    assert verified.payload == payload.encode()
    assert verified.header == json.loads(example["protected_header"])


@pytest.mark.parametrize(("example", "payload"), CASES)
def test_rfc_jws_with_a_flipped_signature_bit_is_rejected(
    example: dict[str, Any], payload: str
) -> None:
    header_segment, payload_segment, signature_segment = example["jws"].split(".")
    signature = bytearray(_b64url(signature_segment))
    signature[len(signature) // 2] ^= 0x01
    forged = ".".join(
        (
            header_segment,
            payload_segment,
            base64.urlsafe_b64encode(bytes(signature)).rstrip(b"=").decode(),
        )
    )
    with pytest.raises(JoseError):
        jws.verify(forged, _verification_key(example["jwk"]), algorithms=[example["alg"]])


# -- signing reproduces the deterministic signatures --------------------------------------------


@pytest.mark.parametrize(("example", "payload"), CASES)
def test_signature_over_the_rfc_signing_input(example: dict[str, Any], payload: str) -> None:
    """Key.sign over the RFC's own signing input: exact bytes for HMAC, RSASSA-PKCS1-v1_5 and
    EdDSA; for the randomized algorithms (ECDSA, RSASSA-PSS) the fresh signature verifies."""
    signing_input, _, signature_segment = example["jws"].rpartition(".")
    key = Key.from_jwk(example["jwk"])
    signature = key.sign(example["alg"], signing_input.encode())
    if example["deterministic"]:
        assert signature == _b64url(signature_segment)
    else:
        assert signature != _b64url(signature_segment)
    token = signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    assert jws.verify(token, _verification_key(example["jwk"])).payload == payload.encode()


@pytest.mark.parametrize(("example", "payload"), REPRODUCIBLE)
def test_jws_sign_reproduces_the_rfc_token(example: dict[str, Any], payload: str) -> None:
    key = Key.from_jwk(example["jwk"])
    assert jws.sign(payload.encode(), key, alg=example["alg"]) == example["jws"]


def test_every_deterministic_case_but_rfc7515_a1_is_reproduced_by_jws_sign() -> None:
    reproduced = {case_id for case_id, example, _ in EXAMPLES if _reproducible(example)}
    assert reproduced == {"RFC7515-A.2-RS256", "RFC7520-4.1-RS256", "RFC7520-4.4-HS256"}


# -- RFC 7515 A.5: the unsecured JWS ------------------------------------------------------------


@pytest.mark.parametrize(
    "jwk",
    [example["jwk"] for example in RFC7515["examples"]],
    ids=[example["id"] for example in RFC7515["examples"]],
)
def test_rfc7515_a5_unsecured_jws_is_rejected(jwk: dict[str, Any]) -> None:
    unsecured = RFC7515["unsecured"]
    header_segment, payload_segment, signature_segment = unsecured["jws"].split(".")
    assert _b64url(header_segment) == unsecured["protected_header"].encode()
    assert _b64url(payload_segment) == unsecured["payload"].encode()
    assert signature_segment == ""
    with pytest.raises(UnsupportedAlgorithm):
        jws.verify(unsecured["jws"], _verification_key(jwk))


def test_rfc7515_a5_unsecured_jws_is_rejected_even_when_none_is_listed() -> None:
    key = _verification_key(RFC7515["examples"][0]["jwk"])
    with pytest.raises(UnsupportedAlgorithm):
        jws.verify(RFC7515["unsecured"]["jws"], key, algorithms=["none"])


# -- RFC 8037 appendix A: Ed25519 ---------------------------------------------------------------


def test_rfc8037_a1_a2_private_key_has_the_published_public_key() -> None:
    key = Key.from_jwk(RFC8037["private_jwk"])
    assert key.is_private
    public = key.public().to_jwk()
    assert {name: public[name] for name in ("kty", "crv", "x")} == RFC8037["public_jwk"]
    assert Key.from_jwk(RFC8037["public_jwk"]).to_jwk() == public


def test_rfc8037_a3_thumbprint() -> None:
    assert Key.from_jwk(RFC8037["public_jwk"]).thumbprint() == RFC8037["thumbprint"]
    assert Key.from_jwk(RFC8037["private_jwk"]).thumbprint() == RFC8037["thumbprint"]
    assert (
        base64.urlsafe_b64encode(hashlib.sha256(RFC8037["thumbprint_input"].encode()).digest())
        .rstrip(b"=")
        .decode()
        == RFC8037["thumbprint"]
    )


def test_rfc8037_a4_signing_reproduces_the_published_jws() -> None:
    key = Key.from_jwk(RFC8037["private_jwk"])
    header_segment, payload_segment, signature_segment = RFC8037["jws"].split(".")
    assert _b64url(header_segment) == RFC8037["protected_header"].encode()
    assert _b64url(payload_segment) == RFC8037["payload"].encode()
    signing_input = f"{header_segment}.{payload_segment}".encode()
    assert key.sign(RFC8037["alg"], signing_input) == _b64url(signature_segment)
    assert jws.sign(RFC8037["payload"].encode(), key, alg=RFC8037["alg"]) == RFC8037["jws"]


def test_rfc8037_a5_verification() -> None:
    key = Key.from_jwk(RFC8037["public_jwk"])
    verified = jws.verify(RFC8037["jws"], key, algorithms=[RFC8037["alg"]])
    assert verified.payload == RFC8037["payload"].encode()
    assert verified.header == {"alg": "EdDSA"}


def test_rfc8037_a5_tampered_payload_fails() -> None:
    header_segment, _, signature_segment = RFC8037["jws"].split(".")
    tampered = base64.urlsafe_b64encode(b"Example of Ed25519 signinG").rstrip(b"=").decode()
    with pytest.raises(JoseError):
        jws.verify(
            f"{header_segment}.{tampered}.{signature_segment}",
            Key.from_jwk(RFC8037["public_jwk"]),
        )


# -- RFC 7638 section 3.1: RSA thumbprint -------------------------------------------------------


def test_rfc7638_section_3_1_thumbprint() -> None:
    assert Key.from_jwk(RFC7638["jwk"]).thumbprint() == RFC7638["thumbprint"]
