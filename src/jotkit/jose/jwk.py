"""JWK key members (RFC 7517, RFC 7518 §6, RFC 8037 §2) to and from ``cryptography`` keys.

Parsing is strict where a lenient reading is an attack: EC points are checked to be on their
curve and coordinates full-width, OKP private keys must match their public ``x``, and key
material that looks asymmetric is never accepted as an HMAC secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm as _CryptoUnsupported
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from jotkit.jose.b64 import b64decode, b64encode
from jotkit.jose.errors import InvalidKey, JoseError

__all__ = [
    "EC_CURVES",
    "OKP_CURVES",
    "jwk_members",
    "material_from_jwk",
    "refuse_asymmetric_secret",
]

EC_CURVES: dict[str, tuple[type[ec.EllipticCurve], int]] = {
    "P-256": (ec.SECP256R1, 32),
    "P-384": (ec.SECP384R1, 48),
    "P-521": (ec.SECP521R1, 66),
}
OKP_CURVES: dict[str, tuple[Any, Any]] = {
    "Ed25519": (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey),
    "Ed448": (ed448.Ed448PrivateKey, ed448.Ed448PublicKey),
}
# Key material that must never become an HMAC secret: feeding a public key to HS256 is the
# algorithm-confusion attack (CVE-2022-29217, CVE-2015-9235).
_ASYMMETRIC_MARKERS = (b"-----BEGIN", b"ssh-rsa", b"ssh-ed25519", b"ecdsa-sha2-", b"ssh-dss")
_RSA_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi")
# The largest RSA modulus taken (what `jotkit keys generate` can make): past it a key is an
# attack on the verifier's CPU, not a key anyone signs JWTs with.
MAX_RSA_BITS = 8192


def refuse_asymmetric_secret(secret: bytes) -> None:
    """Refuse PEM, SSH, JWK or DER key material as an HMAC secret (algorithm confusion)."""
    head = secret[:64]
    looks_asymmetric = any(marker in head for marker in _ASYMMETRIC_MARKERS) or (
        head.lstrip().startswith(b"{") and b'"kty"' in secret
    )
    if not looks_asymmetric and head[:1] == b"\x30":  # a DER SEQUENCE: is it a key?
        loaders = (
            lambda: serialization.load_der_public_key(secret),
            lambda: serialization.load_der_private_key(secret, None),
        )
        for load in loaders:
            try:
                load()
            except (ValueError, TypeError, _CryptoUnsupported):
                continue
            looks_asymmetric = True
            break
    if looks_asymmetric:
        raise InvalidKey("this looks like an asymmetric key; it cannot be an HMAC secret")


def _uint_text(value: int) -> str:
    return b64encode(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def _member(jwk: Mapping[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise InvalidKey(f"JWK member {name!r} is missing or not a string")
    try:
        # Canonical too: a member with two spellings is one key with two JWKs.
        return b64decode(value, f"JWK member {name!r}")
    except JoseError as exc:
        raise InvalidKey(str(exc)) from None


def _uint(jwk: Mapping[str, Any], name: str) -> int:
    return int.from_bytes(_member(jwk, name), "big")


def material_from_jwk(kty: Any, jwk: Mapping[str, Any]) -> tuple[Any, str | None]:
    """The ``cryptography`` key (or HMAC secret) a JWK describes, and its curve name."""
    if kty == "oct":
        secret = _member(jwk, "k")
        refuse_asymmetric_secret(secret)
        return secret, None
    if kty == "RSA":
        public = rsa.RSAPublicNumbers(_uint(jwk, "e"), _uint(jwk, "n"))
        if public.n.bit_length() > MAX_RSA_BITS:
            # Checked before anything costs: recovering the primes of a 32768-bit key holds
            # the GIL for a minute, and even its verify is ~1000x an RSA-2048 one.
            raise InvalidKey(f"RSA key over {MAX_RSA_BITS} bits refused")
        if "d" not in jwk:
            return public.public_key(), None
        d = _uint(jwk, "d")
        if all(name in jwk for name in _RSA_PRIVATE_MEMBERS):
            p, q = _uint(jwk, "p"), _uint(jwk, "q")
            dp, dq, qi = _uint(jwk, "dp"), _uint(jwk, "dq"), _uint(jwk, "qi")
        else:
            # RFC 7518 §6.3.2: the CRT members are optional; recover them from n, e, d.
            p, q = rsa.rsa_recover_prime_factors(public.n, public.e, d)
            dp, dq, qi = rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q)
        return rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, public).private_key(), None
    if kty == "EC":
        crv = jwk.get("crv")
        if type(crv) is not str or crv not in EC_CURVES:  # a list or dict is not hashable
            raise InvalidKey(f"unsupported EC curve {crv!r:.40}")
        curve_type, size = EC_CURVES[crv]
        x, y = _member(jwk, "x"), _member(jwk, "y")
        # RFC 7518 §6.2.1.2: coordinates are full-width; a short one is a malformed key.
        if len(x) != size or len(y) != size:
            raise InvalidKey(f"EC {crv} coordinates must be {size} bytes")
        # public_key() checks the point is on the curve (the invalid-curve attack).
        numbers = ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve_type()
        )
        if "d" not in jwk:
            return numbers.public_key(), crv
        d_bytes = _member(jwk, "d")
        if len(d_bytes) != size:
            raise InvalidKey(f"EC {crv} private value must be {size} bytes")
        private = ec.EllipticCurvePrivateNumbers(int.from_bytes(d_bytes, "big"), numbers)
        return private.private_key(), crv
    if kty == "OKP":
        crv = jwk.get("crv")
        if type(crv) is not str or crv not in OKP_CURVES:
            raise InvalidKey(f"unsupported OKP curve {crv!r:.40}")
        private_type, public_type = OKP_CURVES[crv]
        x = _member(jwk, "x")
        if "d" not in jwk:
            return public_type.from_public_bytes(x), crv
        private_key = private_type.from_private_bytes(_member(jwk, "d"))
        if private_key.public_key().public_bytes_raw() != x:
            raise InvalidKey(f"OKP {crv} private key does not match its public x")
        return private_key, crv
    raise InvalidKey(f"unsupported key type kty={kty!r}")


def jwk_members(
    kty: str, crv: str | None, material: Any, *, is_private: bool, export_private: bool
) -> dict[str, Any]:
    """The key members of a JWK for ``material`` (RFC 7518 §6, RFC 8037 §2), without ``kty``;
    the private ones only with ``export_private`` and a private ``material``."""
    members: dict[str, Any] = {}
    export_private = export_private and is_private  # a public key has nothing more to give
    if kty == "oct":
        members["k"] = b64encode(material)
    elif kty == "RSA":
        public_numbers = (material.public_key() if is_private else material).public_numbers()
        members["n"], members["e"] = _uint_text(public_numbers.n), _uint_text(public_numbers.e)
        if export_private:
            numbers = material.private_numbers()
            members.update(
                d=_uint_text(numbers.d),
                p=_uint_text(numbers.p),
                q=_uint_text(numbers.q),
                dp=_uint_text(numbers.dmp1),
                dq=_uint_text(numbers.dmq1),
                qi=_uint_text(numbers.iqmp),
            )
    elif kty == "EC":
        size = EC_CURVES[crv or ""][1]
        public_numbers = (material.public_key() if is_private else material).public_numbers()
        members["crv"] = crv
        members["x"] = b64encode(public_numbers.x.to_bytes(size, "big"))
        members["y"] = b64encode(public_numbers.y.to_bytes(size, "big"))
        if export_private:
            members["d"] = b64encode(material.private_numbers().private_value.to_bytes(size, "big"))
    else:
        public_key = material.public_key() if is_private else material
        members["crv"] = crv
        members["x"] = b64encode(public_key.public_bytes_raw())
        if export_private:
            members["d"] = b64encode(material.private_bytes_raw())
    return members
