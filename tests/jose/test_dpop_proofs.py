"""DPoP proofs (RFC 9449 §4): make_proof and check_proof without HTTP."""

from __future__ import annotations

import time

import pytest

from jotkit import Key
from jotkit.jose.b64 import b64encode
from jotkit.jose.dpop import (
    DPoPError,
    ProofChecker,
    ProofPolicy,
    access_token_hash,
    check_proof,
    make_proof,
    normalize_htu,
)
from jotkit.jose.jwt import peek

URL = "https://api.example.test/things"


@pytest.mark.parametrize(
    "spelling",
    [
        "https://api.example.test/things",
        "HTTPS://API.Example.TEST/things",
        "https://api.example.test:443/things",
        "https://api.example.test/things?q=1#frag",
    ],
)
def test_normalized_htu_matches(spelling: str) -> None:
    assert normalize_htu(spelling) == normalize_htu(URL)


@pytest.mark.parametrize(
    "other",
    [
        "http://api.example.test/things",
        "https://api.example.test:8443/things",
        "https://other.example.test/things",
        "https://api.example.test/Things",
    ],
)
def test_htu_differences_that_matter(other: str) -> None:
    assert normalize_htu(other) != normalize_htu(URL)


def test_empty_path_is_slash_and_ipv6_keeps_brackets() -> None:
    assert normalize_htu("http://[::1]:80") == "http://[::1]/"


def test_non_http_htu_is_refused() -> None:
    with pytest.raises(DPoPError) as caught:
        normalize_htu("ftp://example.test/")
    assert caught.value.code == "ERR_DPOP_HTU"


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "PS256"])
def test_proof_round_trip(alg: str) -> None:
    key = Key.generate(alg, kid="client-1")
    now = time.time()
    proof = make_proof(key, "POST", URL + "?x=1", access_token="tok", nonce="n1", now=now)
    header, claims = peek(proof)
    assert header["typ"] == "dpop+jwt" and "kid" not in header
    assert set(header["jwk"]) <= {"kty", "crv", "x", "y", "n", "e"}  # public members only
    assert claims["htu"] == URL and claims["ath"] == access_token_hash("tok")
    checked = check_proof(
        proof, method="POST", url=URL, now=now, access_token="tok", jkt=key.thumbprint()
    )
    assert checked.jkt == key.thumbprint() and checked.nonce == "n1"


def test_nonce_hook_refusal_is_use_dpop_nonce() -> None:
    key = Key.generate("ES256")
    proof = make_proof(key, "GET", URL, nonce="stale")
    checker = ProofChecker(ProofPolicy(check_nonce=lambda nonce: nonce == "fresh"))
    with pytest.raises(DPoPError) as caught:
        checker.check(proof, method="GET", url=URL, now=time.time())
    assert caught.value.code == "ERR_DPOP_NONCE" and caught.value.error == "use_dpop_nonce"


def test_symmetric_algorithms_cannot_be_allowed() -> None:
    with pytest.raises(ValueError, match="HS256"):
        ProofPolicy(algorithms=("ES256", "HS256"))


def test_oct_jwk_is_refused() -> None:
    proof = make_proof(Key.generate("ES256"), "GET", URL)
    header = b'{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"oct","k":"c2VjcmV0"}}'
    forged = b64encode(header) + proof[proof.index(".") :]
    with pytest.raises(DPoPError) as caught:
        check_proof(forged, method="GET", url=URL, now=time.time())
    assert caught.value.code == "ERR_DPOP_JWK_PRIVATE"


def test_a_public_key_cannot_make_proofs() -> None:
    with pytest.raises(DPoPError):
        make_proof(Key.generate("ES256").public(), "GET", URL)


def test_cached_header_still_checks_the_signature() -> None:
    key = Key.generate("ES256")
    checker = ProofChecker()
    now = time.time()
    first = make_proof(key, "GET", URL, now=now)
    checker.check(first, method="GET", url=URL, now=now)  # caches the header's key
    second = make_proof(key, "GET", URL, now=now)
    forged = second.rpartition(".")[0] + "." + first.rpartition(".")[2]
    with pytest.raises(DPoPError) as caught:
        checker.check(forged, method="GET", url=URL, now=now)
    assert caught.value.code == "ERR_DPOP_SIGNATURE"


def _checker_with_cached_header(key: Key, now: float) -> ProofChecker:
    checker = ProofChecker()
    checker.check(make_proof(key, "GET", URL, now=now), method="GET", url=URL, now=now)
    return checker


def test_cached_header_still_refuses_a_proof_of_the_wrong_shape() -> None:
    key, now = Key.generate("ES256"), time.time()
    checker = _checker_with_cached_header(key, now)
    proof = make_proof(key, "GET", URL, now=now)
    for shape in (proof + ".AAAA", proof.rpartition(".")[0], proof.partition(".")[0]):
        with pytest.raises(DPoPError) as caught:
            checker.check(shape, method="GET", url=URL, now=now)
        assert caught.value.code == "ERR_DPOP_MALFORMED"


def test_cached_header_still_refuses_a_non_canonical_payload() -> None:
    # A second spelling of the same payload bytes (non-zero unused bits, RFC 4648 §3.5).
    key, now = Key.generate("ES256"), time.time()
    checker = _checker_with_cached_header(key, now)
    proof = next(
        proof
        for proof in (make_proof(key, "GET", URL, now=now, jti="j" * n) for n in range(1, 5))
        if len(proof.split(".")[1]) % 4 == 2
    )
    header, payload, signature = proof.split(".")
    respelt = payload[:-1] + chr(ord(payload[-1]) + 1)
    with pytest.raises(DPoPError) as caught:
        checker.check(f"{header}.{respelt}.{signature}", method="GET", url=URL, now=now)
    assert caught.value.code == "ERR_DPOP_MALFORMED"


def test_cached_header_follows_a_narrowed_allow_list() -> None:
    key, now = Key.generate("ES256"), time.time()
    checker = _checker_with_cached_header(key, now)
    checker.policy = ProofPolicy(algorithms=("ES384",))
    with pytest.raises(DPoPError) as caught:
        checker.check(make_proof(key, "GET", URL, now=now), method="GET", url=URL, now=now)
    assert caught.value.code == "ERR_DPOP_ALG"
