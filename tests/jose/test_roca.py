"""ROCA (CVE-2017-15361): RSA keys made by Infineon's RSALib are refused on every import
path; keys made any other way still load."""

from __future__ import annotations

import random

import pytest
from _assertions import assert_raises_code as _assert_raises
from _roca import roca_modulus, roca_private_key
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from jotkit import InvalidKey, Key, KeySet
from jotkit.jose.b64 import b64encode
from jotkit.jose.roca import _subgroup_orders, has_roca_fingerprint

PEM, DER = serialization.Encoding.PEM, serialization.Encoding.DER
PKCS8, SPKI = serialization.PrivateFormat.PKCS8, serialization.PublicFormat.SubjectPublicKeyInfo


@pytest.fixture(scope="module")
def roca_key() -> rsa.RSAPrivateKey:
    return roca_private_key(2048)


def _refused(load: object, *args: object) -> None:
    _assert_raises(InvalidKey, "ERR_JWK_ROCA", load, *args)  # type: ignore[arg-type]


def test_a_roca_key_is_refused_on_every_import_path(roca_key: rsa.RSAPrivateKey) -> None:
    public = roca_key.public_key()
    no_encryption = serialization.NoEncryption()
    _refused(Key.from_cryptography, roca_key)
    _refused(Key.from_cryptography, public)
    _refused(Key.from_pem, roca_key.private_bytes(PEM, PKCS8, no_encryption))
    _refused(Key.from_pem, public.public_bytes(PEM, SPKI))
    _refused(Key.from_der, roca_key.private_bytes(DER, PKCS8, no_encryption))
    _refused(Key.from_der, public.public_bytes(DER, SPKI))
    # The JWK forms, built by hand since jotkit will not hold the key to export it.
    private_jwk = _jwk(roca_key)
    public_jwk = {name: private_jwk[name] for name in ("kty", "n", "e")}
    _refused(Key.from_jwk, private_jwk)
    _refused(Key.from_jwk, public_jwk)
    # A set skips an unusable key (RFC 7517 §5), as it does a malformed one.
    assert len(KeySet.from_jwks({"keys": [public_jwk]})) == 0


def _jwk(key: rsa.RSAPrivateKey) -> dict[str, str]:
    numbers = key.private_numbers()

    def text(value: int) -> str:
        return b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    values = {
        "n": numbers.public_numbers.n,
        "e": numbers.public_numbers.e,
        "d": numbers.d,
        "p": numbers.p,
        "q": numbers.q,
        "dp": numbers.dmp1,
        "dq": numbers.dmq1,
        "qi": numbers.iqmp,
    }
    return {"kty": "RSA", **{name: text(value) for name, value in values.items()}}


@pytest.mark.parametrize("bits", [512, 1024, 2048, 3072, 4096])
def test_the_fingerprint_is_found_at_every_rsalib_size(bits: int) -> None:
    # RSALib's M has 39, 71, 126 or 225 primes by size; each size is detected with its own.
    for seed in range(3):
        modulus = roca_modulus(bits, seed)
        assert has_roca_fingerprint(modulus)
        assert not has_roca_fingerprint(modulus + 2)  # its neighbour has no such structure


def test_the_subgroups_are_the_published_detectors_markers() -> None:
    # The first markers of the CRoCS detector (crocs-muni/roca, detect.py): bit i of the
    # marker for prime r is set when i is a power of 65537 mod r. has_roca_fingerprint tests
    # membership by the subgroup's order instead; both must name the same residues.
    published = [6, 30, 126, 1026, 5658, 107286, 199410, 8388606, 536870910, 2147483646]
    for (prime, order), marker in zip(_subgroup_orders(39), published, strict=False):
        powers = {pow(65537, exponent, prime) for exponent in range(prime)}
        assert sum(1 << residue for residue in powers) == marker
        assert {r for r in range(1, prime) if pow(r, order, prime) == 1} == powers


def test_ordinary_keys_still_load() -> None:
    for bits in (2048, 2048, 3072):
        key = rsa.generate_private_key(65537, bits)
        assert Key.from_cryptography(key).kty == "RSA"
        assert Key.from_pem(key.public_key().public_bytes(PEM, SPKI)).kty == "RSA"
    assert Key.generate("PS256").kty == "RSA"
    # The RFC 7515/7520 RSA keys load in tests/jose/test_vectors.py.


def test_random_moduli_do_not_carry_the_fingerprint() -> None:
    rng = random.Random(15361)
    for bits in (2048, 3072, 4096):
        for _ in range(5000):
            modulus = rng.getrandbits(bits) | 1 | (1 << (bits - 1))
            assert not has_roca_fingerprint(modulus)
