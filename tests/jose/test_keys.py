"""Key safety rules: weak keys, key use, private material, exports, thumbprints."""

from __future__ import annotations

import pytest
from _assertions import assert_raises_code as _assert_raises
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from jotkit import InvalidClaim, InvalidKey, Key, KeyMismatch, KeySet, jws, jwt
from jotkit.jose.b64 import b64encode

EXP = 2_000_000_000
NOW = 1_900_000_000


@pytest.fixture(scope="module")
def rsa_key() -> Key:
    return Key.generate("RS256")


@pytest.fixture(scope="module")
def ec_key() -> Key:
    return Key.generate("ES256")


def test_hmac_secret_shorter_than_hash_output_refused() -> None:
    _assert_raises(InvalidKey, "ERR_JWK_INVALID", Key.from_secret, b"x" * 31)
    _assert_raises(InvalidKey, "ERR_JWK_INVALID", Key.from_secret, b"x" * 47, alg="HS384")
    _assert_raises(InvalidKey, "ERR_JWK_INVALID", Key.from_secret, b"x" * 63, alg="HS512")
    _assert_raises(InvalidKey, "ERR_JWK_INVALID", Key.from_secret, b"")
    short_jwk = {"kty": "oct", "k": b64encode(b"x" * 31)}
    _assert_raises(InvalidKey, "ERR_JWK_INVALID", Key.from_jwk, short_jwk)
    assert Key.from_secret(b"x" * 32).algorithms == frozenset({"HS256"})


def test_32_byte_secret_cannot_do_hs512() -> None:
    _assert_raises(InvalidKey, "ERR_JWK_INVALID", Key.from_secret, b"x" * 32, alg="HS512")
    key = Key.from_jwk({"kty": "oct", "k": b64encode(b"x" * 32)})
    assert "HS512" not in key.algorithms
    _assert_raises(KeyMismatch, "ERR_JOSE_ALG_NOT_ALLOWED", jws.sign, b"{}", key, alg="HS512")
    hs512 = jws.sign(b"{}", Key.from_secret(b"x" * 64, alg="HS512"))
    _assert_raises(KeyMismatch, "ERR_JOSE_ALG_NOT_ALLOWED", jws.verify, hs512, key)


def test_rsa_1024_bit_key_refused() -> None:
    weak = rsa.generate_private_key(65537, 1024)
    private_pem = weak.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = weak.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public_der = weak.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _assert_raises(InvalidKey, "ERR_JWK_INVALID", Key.from_pem, private_pem)
    _assert_raises(InvalidKey, "ERR_JWK_INVALID", Key.from_pem, public_pem)
    _assert_raises(InvalidKey, "ERR_JWK_INVALID", Key.from_der, public_der)
    _assert_raises(InvalidKey, "ERR_JWK_INVALID", Key.from_cryptography, weak)
    numbers = weak.public_key().public_numbers()
    jwk = {
        "kty": "RSA",
        "n": b64encode(numbers.n.to_bytes(128, "big")),
        "e": b64encode(numbers.e.to_bytes(3, "big")),
    }
    _assert_raises(InvalidKey, "ERR_JWK_INVALID", Key.from_jwk, jwk)
    assert len(KeySet.from_jwks({"keys": [jwk]})) == 0


def test_use_enc_jwk_refuses_to_verify(ec_key: Key) -> None:
    token = jws.sign(b"{}", ec_key)
    enc = Key.from_jwk({**ec_key.public().to_jwk(), "use": "enc"})
    _assert_raises(KeyMismatch, "ERR_JOSE_ALG_NOT_ALLOWED", jws.verify, token, enc)
    with pytest.raises(KeyMismatch):
        jws.verify(token, KeySet([enc]))


def test_key_ops_sign_only_refuses_verify(ec_key: Key) -> None:
    token = jws.sign(b"{}", ec_key)
    sign_only = Key.from_jwk({**ec_key.to_jwk(private=True), "key_ops": ["sign"]})
    _assert_raises(KeyMismatch, "ERR_JOSE_ALG_NOT_ALLOWED", jws.verify, token, sign_only)
    verify_only = Key.from_jwk({**ec_key.to_jwk(private=True), "key_ops": ["verify"]})
    assert jws.verify(token, verify_only).payload == b"{}"
    _assert_raises(KeyMismatch, "ERR_JOSE_ALG_NOT_ALLOWED", jws.sign, b"{}", verify_only)


def test_repr_of_private_key_has_no_private_material(rsa_key: Key, ec_key: Key) -> None:
    secret = b"s3cr3t-" * 6
    hs = Key.from_secret(secret)
    assert "s3cr3t" not in repr(hs)
    assert b64encode(secret) not in repr(hs)
    for key in (rsa_key, ec_key):
        text = repr(key)
        for name, value in key.to_jwk(private=True).items():
            if name in ("d", "p", "q", "dp", "dq", "qi"):
                assert value not in text
        assert "PRIVATE" not in text


def test_to_jwk_of_private_key_has_no_private_members(rsa_key: Key, ec_key: Key) -> None:
    okp = Key.generate("Ed25519")
    for key in (rsa_key, ec_key, okp):
        jwk = key.to_jwk()
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(jwk)
        assert "d" in key.to_jwk(private=True)
        assert "d" not in KeySet([key]).to_jwks()["keys"][0]


def test_to_jwk_private_of_a_public_key_is_its_public_jwk(rsa_key: Key, ec_key: Key) -> None:
    for key in (rsa_key.public(), ec_key.public(), Key.generate("Ed448").public()):
        assert key.to_jwk(private=True) == key.to_jwk()


def test_to_jwk_of_hmac_requires_private_true() -> None:
    key = Key.from_secret(b"x" * 32)
    _assert_raises(InvalidKey, "ERR_JWK_INVALID", key.to_jwk)
    _assert_raises(InvalidKey, "ERR_JWK_INVALID", KeySet([key]).to_jwks)
    _assert_raises(InvalidKey, "ERR_JWK_INVALID", key.public)
    _assert_raises(InvalidKey, "ERR_JWK_INVALID", key.to_pem)
    assert key.to_jwk(private=True)["k"] == b64encode(b"x" * 32)


def test_ec_public_key_round_trips_jwk_pem_der(ec_key: Key) -> None:
    public = ec_key.public()
    assert not public.is_private
    token = jwt.sign({"exp": EXP, "sub": "u"}, ec_key)
    from_jwk = Key.from_jwk(public.to_jwk())
    from_pem = Key.from_pem(public.to_pem())
    from_der = Key.from_der(public.to_der())
    for key in (from_jwk, from_pem, from_der):
        assert not key.is_private
        assert key.to_pem() == public.to_pem()
        assert key.to_der() == public.to_der()
        assert key.thumbprint() == public.thumbprint()
        assert jwt.verify(token, key, now=NOW)["sub"] == "u"
    assert from_jwk.to_jwk() == public.to_jwk()
    _assert_raises(InvalidKey, "ERR_JWK_INVALID", public.to_pem, private=True)
    _assert_raises(KeyMismatch, "ERR_JOSE_ALG_NOT_ALLOWED", jws.sign, b"{}", public)


def test_thumbprint_stable_across_jwk_and_pem_import(rsa_key: Key, ec_key: Key) -> None:
    for key in (rsa_key, ec_key, Key.generate("Ed25519")):
        expected = key.thumbprint()
        assert key.kid == expected
        assert Key.from_pem(key.to_pem()).thumbprint() == expected
        assert Key.from_pem(key.to_pem(private=True)).thumbprint() == expected
        assert Key.from_der(key.to_der()).thumbprint() == expected
        assert Key.from_jwk(key.to_jwk()).thumbprint() == expected
        assert Key.from_jwk(key.to_jwk(private=True)).thumbprint() == expected
        # kid/alg/use are not part of the RFC 7638 thumbprint.
        assert Key.from_jwk({**key.to_jwk(), "kid": "x", "use": "sig"}).thumbprint() == expected


def test_rfc7638_thumbprint_vector() -> None:
    # RFC 7638 §3.1 example.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSo"
        "c_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65Y"
        "GjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrd"
        "kt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKn"
        "qDKgw"
    )
    key = Key.from_jwk({"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"})
    assert key.thumbprint() == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize(
    "name", ["password", "client_secret", "Password", "client-secret", "api_key"]
)
def test_jwt_sign_refuses_secret_claims(ec_key: Key, name: str) -> None:
    _assert_raises(
        InvalidClaim, "ERR_JWT_SECRET_CLAIM", jwt.sign, {"exp": EXP, name: "hunter2"}, ec_key
    )


def test_jwt_sign_refuses_missing_exp_unless_allowed(ec_key: Key) -> None:
    _assert_raises(InvalidClaim, "ERR_JWT_MISSING_EXP", jwt.sign, {"sub": "u"}, ec_key)
    token = jwt.sign({"sub": "u"}, ec_key, allow_no_exp=True)
    assert jwt.verify(token, ec_key, now=NOW, require=())["sub"] == "u"


@pytest.mark.parametrize("exp", [True, "123", None, float("nan"), float("inf")])
def test_jwt_sign_refuses_non_numeric_exp(ec_key: Key, exp: object) -> None:
    _assert_raises(InvalidClaim, "ERR_JWT_INVALID_EXP", jwt.sign, {"exp": exp}, ec_key)


def test_header_cannot_override_alg_on_jwt_sign(ec_key: Key) -> None:
    for alg in ("none", "HS256", "ES384"):
        _assert_raises(
            KeyMismatch,
            "ERR_JOSE_ALG_NOT_ALLOWED",
            jwt.sign,
            {"exp": EXP},
            ec_key,
            header={"alg": alg},
        )
    token = jwt.sign({"exp": EXP}, ec_key, header={"alg": "ES256"})
    assert jwt.peek(token)[0]["alg"] == "ES256"


def test_invalid_curve_point_refused(ec_key: Key) -> None:
    jwk = ec_key.public().to_jwk()
    jwk["y"] = b64encode(bytes(31) + b"\x01")
    with pytest.raises(InvalidKey):
        Key.from_jwk(jwk)


def test_keyset_refuses_duplicate_kid() -> None:
    a = Key.generate("ES256", kid="same")
    b = Key.generate("ES256", kid="same")
    _assert_raises(InvalidKey, "ERR_JWK_INVALID", KeySet, [a, b])


def test_rsa_key_over_8192_bits_refused_before_any_work() -> None:
    # A 16384-bit modulus with a private exponent and no primes: without the cap, parsing
    # it would run prime recovery (seconds of GIL-holding arithmetic for a hostile JWK).
    huge = (1 << 16383) | 1
    jwk = {
        "kty": "RSA",
        "n": b64encode(huge.to_bytes(2048, "big")),
        "e": "AQAB",
        "d": b64encode(((1 << 16000) + 12345).to_bytes(2001, "big")),
    }
    with pytest.raises(InvalidKey, match="over 8192 bits"):
        Key.from_jwk(jwk)
    public = {name: jwk[name] for name in ("kty", "n", "e")}
    with pytest.raises(InvalidKey, match="over 8192 bits"):
        Key.from_jwk(public)


def test_a_public_only_key_set_skips_secrets_and_drops_private_members(
    rsa_key: Key, ec_key: Key
) -> None:
    secret = Key.generate("HS256", kid="s")
    jwks = {"keys": [rsa_key.to_jwk(private=True), ec_key.to_jwk(), secret.to_jwk(private=True)]}
    # A local set may hold secrets, but not beside public-key keys (tests/jose/test_keyset.py).
    assert "s" in KeySet.from_jwks({"keys": [secret.to_jwk(private=True)]})
    with pytest.raises(InvalidKey):
        KeySet.from_jwks(jwks)
    published = KeySet.from_jwks(jwks, public_only=True)
    assert "s" not in published and len(published) == 2
    assert not any(key.is_private for key in published)


@pytest.mark.parametrize("kty", ["EC", "OKP"])
@pytest.mark.parametrize("crv", [["P-256"], {"name": "Ed25519"}, 256, None, "P-999"])
def test_curve_that_is_not_a_known_name_is_a_clear_jwk_error(kty: str, crv: object) -> None:
    jwk = {"kty": kty, "crv": crv, "x": "AAAA", "y": "AAAA"}
    with pytest.raises(InvalidKey, match=f"unsupported {kty} curve") as caught:
        Key.from_jwk(jwk)
    assert caught.value.code == "ERR_JWK_INVALID"
