"""Keys: JWK (RFC 7517), PEM/DER, generation, RFC 7638 thumbprints.

A ``Key`` knows which algorithms it may be used with: its own ``alg`` when bound, else every
algorithm of its type and curve (HMAC ones only when the secret is long enough). That set, not
the token's header, decides what a signature is checked with (RFC 8725 §3.1).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

import orjson
from cryptography.exceptions import UnsupportedAlgorithm as _CryptoUnsupported
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from jotkit.codes import ERR_JWK_ROCA
from jotkit.jose.algorithms import ALGORITHMS, Algorithm, algorithms_for
from jotkit.jose.b64 import b64encode
from jotkit.jose.errors import InvalidKey, KeyMismatch, UnsupportedAlgorithm
from jotkit.jose.jwk import (
    EC_CURVES,
    MAX_RSA_BITS,
    OKP_CURVES,
    jwk_members,
    material_from_jwk,
    refuse_asymmetric_secret,
)
from jotkit.jose.roca import has_roca_fingerprint

__all__ = ["MAX_RSA_BITS", "MIN_RSA_BITS", "Key"]

MIN_RSA_BITS = 2048

_EC_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
# What a caller gets for a "sign with this kind of key" request without an explicit alg.
_DEFAULT_ALG = {"RSA": "RS256", "P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_DEFAULT_ALG.update({"Ed25519": "Ed25519", "Ed448": "Ed448", "oct": "HS256"})
_PUBLIC_MEMBERS = {"oct": ("k",), "RSA": ("e", "n"), "EC": ("crv", "x", "y"), "OKP": ("crv", "x")}


#: A memoized route of a verified protected header (``jws.verify_compact``): the parsed
#: header, its algorithm, and the keys that may check a signature made under it.
HeaderRoute: TypeAlias = "tuple[dict[str, Any], Algorithm, tuple[Key, ...]]"
#: A prepared signing header (``jws.sign_compact``): the algorithm and the base64url header
#: followed by ".".
SigningHeader: TypeAlias = tuple[Algorithm, bytes]


class Key:
    """One signing or verification key, bound to at most one algorithm.

    Build it with ``from_jwk``, ``from_pem``, ``from_der``, ``from_secret`` or ``generate``.
    ``repr`` and ``to_jwk()`` never show private material (``to_jwk(private=True)`` does).

    Members named ``jws_*`` are the internal interface between keys and ``jose.jws``'s hot
    path (plain attributes: a property or a method call would cost on every verify). They
    are typed and documented here, and not public API: they may change without deprecation.

    - ``jws_verify_algorithms``: the algorithms this key may check a signature with (empty
      for a key whose ``use``/``key_ops`` forbid verifying);
    - ``jws_verify_material``: what the primitive verifies with (the secret, or the public
      half computed once); ``jws_sign_material``: what it signs with (None for a public key);
    - ``jws_mac(hash_name, signing_input)``: the HMAC of an oct key, from a cached keyed state;
    - ``jws_refusal(alg)``: why ``alg`` is not allowed for this key, as a message;
    - ``jws_header_memo``: routes of verified protected headers (``HeaderRoute``), keyed by
      their base64url text; ``jws_signing_headers``: prepared signing headers
      (``SigningHeader``) by (requested alg, typ).
    """

    __slots__ = (
        "_allowed",
        "_hmac_bases",
        "_material",
        "_private",
        "alg",
        "crv",
        "jws_header_memo",
        "jws_sign_material",
        "jws_signing_headers",
        "jws_verify_algorithms",
        "jws_verify_material",
        "key_ops",
        "kid",
        "kty",
        "use",
    )

    def __init__(
        self,
        material: Any,
        *,
        kty: str,
        crv: str | None = None,
        alg: str | None = None,
        kid: str | None = None,
        use: str | None = None,
        key_ops: Iterable[str] | None = None,
    ) -> None:
        """Wrap a ``cryptography`` key object (or HMAC secret bytes); prefer the constructors."""
        self.kty = kty
        self.crv = crv
        self._material = material
        self._private = kty == "oct" or hasattr(material, "sign")
        # What verify() hands to the primitive: the secret, or the public half computed once.
        self.jws_verify_material: Any = (
            material.public_key() if kty != "oct" and self._private else material
        )
        self.jws_sign_material: Any = material if self._private else None
        if kid is not None and not isinstance(kid, str):
            raise InvalidKey("kid must be a string")
        if use not in (None, "sig", "enc"):
            raise InvalidKey(f"unknown key use {use!r} (expected 'sig' or 'enc')")
        self.kid = kid
        self.use = use
        self.key_ops = None if key_ops is None else frozenset(key_ops)
        compatible = algorithms_for(kty, crv)
        if kty == "oct":
            # RFC 7518 §3.2: an HMAC key must be at least as long as the hash output.
            compatible = frozenset(
                name for name in compatible if len(material) >= ALGORITHMS[name].size_bytes
            )
        if alg is not None:
            if alg not in ALGORITHMS:
                raise InvalidKey(f"unsupported algorithm {alg!r} for a key")
            if alg not in compatible:
                raise InvalidKey(self.jws_refusal(alg))
            compatible = frozenset({alg})
        elif not compatible:
            raise InvalidKey(self.jws_refusal("HS256"))
        self.alg = alg
        self._allowed = compatible
        # use=enc keys stay in a key set (a JWKS may mix them) but never check a signature.
        self.jws_verify_algorithms: frozenset[str] = (
            compatible if self.can("verify") else frozenset()
        )
        # Routes of verified protected headers, keyed by their base64url text (see
        # jws.verify_compact), and encoded headers this key signs with (see
        # jws.sign_compact): per-key caches.
        self.jws_header_memo: dict[bytes, HeaderRoute] = {}
        self.jws_signing_headers: dict[tuple[str | None, str | None], SigningHeader] = {}
        self._hmac_bases: dict[str, hmac.HMAC] = {}

    def jws_mac(self, hash_name: str, signing_input: bytes) -> bytes:
        """HMAC of ``signing_input`` with this (oct) key's secret, from a keyed state cached
        per hash: copying it skips the key schedule (two hash blocks), ~35% of hmac.digest."""
        base = self._hmac_bases.get(hash_name)
        if base is None:
            base = self._hmac_bases[hash_name] = hmac.new(self._material, digestmod=hash_name)
        mac = base.copy()
        mac.update(signing_input)
        return mac.digest()

    def jws_refusal(self, alg: str) -> str:
        """Why ``alg`` is not allowed for this key, as a message for KeyMismatch/InvalidKey."""
        if self.kty == "oct" and alg in ALGORITHMS and ALGORITHMS[alg].kty == "oct":
            need = ALGORITHMS[alg].size_bytes
            return f"{alg} needs a secret of at least {need} bytes (RFC 7518 §3.2)"
        what = f"{self.kty} key" + (f" on {self.crv}" if self.crv else "")
        return f"algorithm {alg} is not allowed for an {what}"

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_secret(cls, secret: bytes, *, alg: str = "HS256", kid: str | None = None) -> Key:
        """An HMAC key. Refuses secrets shorter than the hash output and anything that looks
        like public-key material (the HS256-with-an-RSA-public-key confusion)."""
        if not isinstance(secret, bytes | bytearray):
            raise InvalidKey("an HMAC secret must be bytes")
        secret = bytes(secret)
        refuse_asymmetric_secret(secret)
        if alg not in ALGORITHMS or ALGORITHMS[alg].kty != "oct":
            raise InvalidKey(f"{alg!r} is not an HMAC algorithm")
        return cls(secret, kty="oct", alg=alg, kid=kid)

    @classmethod
    def from_pem(
        cls,
        data: bytes | str,
        *,
        alg: str | None = None,
        kid: str | None = None,
        password: bytes | None = None,
    ) -> Key:
        """A key from PEM text: a private key, a public key or an X.509 certificate."""
        raw = data.encode() if isinstance(data, str) else bytes(data)
        if b"-----BEGIN" not in raw:
            return cls.from_der(raw, alg=alg, kid=kid, password=password)
        loaders: tuple[Any, ...] = (
            lambda: serialization.load_pem_private_key(raw, password),
            lambda: serialization.load_pem_public_key(raw),
            lambda: _x509().load_pem_x509_certificate(raw).public_key(),
        )
        return cls._from_loaders(loaders, alg=alg, kid=kid)

    @classmethod
    def from_der(
        cls,
        data: bytes,
        *,
        alg: str | None = None,
        kid: str | None = None,
        password: bytes | None = None,
    ) -> Key:
        """A key from DER bytes (PKCS#8 / traditional private key, SPKI public key, cert)."""
        raw = bytes(data)
        loaders: tuple[Any, ...] = (
            lambda: serialization.load_der_private_key(raw, password),
            lambda: serialization.load_der_public_key(raw),
            lambda: _x509().load_der_x509_certificate(raw).public_key(),
        )
        return cls._from_loaders(loaders, alg=alg, kid=kid)

    @classmethod
    def _from_loaders(cls, loaders: tuple[Any, ...], *, alg: str | None, kid: str | None) -> Key:
        for load in loaders:
            try:
                material = load()
            except TypeError as exc:  # encrypted key without password, or the reverse
                raise InvalidKey(f"cannot load key: {exc}") from None
            except (ValueError, _CryptoUnsupported):
                continue
            return cls.from_cryptography(material, alg=alg, kid=kid)
        raise InvalidKey("not a supported PEM/DER private key, public key or certificate")

    @classmethod
    def from_cryptography(
        cls, material: Any, *, alg: str | None = None, kid: str | None = None
    ) -> Key:
        """Wrap a ``cryptography`` private or public key object."""
        if isinstance(material, rsa.RSAPrivateKey | rsa.RSAPublicKey):
            if not MIN_RSA_BITS <= material.key_size <= MAX_RSA_BITS:
                raise InvalidKey(
                    f"RSA key of {material.key_size} bits refused "
                    f"({MIN_RSA_BITS} to {MAX_RSA_BITS} bits)"
                )
            public = material if isinstance(material, rsa.RSAPublicKey) else material.public_key()
            if has_roca_fingerprint(public.public_numbers().n):
                raise InvalidKey(
                    "this RSA key has the ROCA fingerprint (CVE-2017-15361, Infineon RSALib): "
                    "its private key can be computed from its public key; replace the key",
                    code=ERR_JWK_ROCA,
                )
            return cls(material, kty="RSA", alg=alg, kid=kid)
        if isinstance(material, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
            crv = _EC_NAMES.get(material.curve.name)
            if crv is None:
                raise InvalidKey(f"unsupported elliptic curve {material.curve.name}")
            return cls(material, kty="EC", crv=crv, alg=alg, kid=kid)
        for crv, (private_type, public_type) in OKP_CURVES.items():
            if isinstance(material, private_type | public_type):
                return cls(material, kty="OKP", crv=crv, alg=alg, kid=kid)
        raise InvalidKey(f"unsupported key type {type(material).__name__}")

    @classmethod
    def generate(cls, alg: str, *, kid: str | None = None, rsa_bits: int = 2048) -> Key:
        """A fresh key for ``alg``, bound to it; ``kid`` defaults to the RFC 7638 thumbprint."""
        spec = ALGORITHMS.get(alg)
        if spec is None:
            raise InvalidKey(f"unsupported algorithm {alg!r}")
        material: Any
        if spec.kty == "oct":
            return cls(os.urandom(spec.size_bytes), kty="oct", alg=alg, kid=kid)
        if spec.kty == "RSA":
            material = rsa.generate_private_key(65537, max(rsa_bits, MIN_RSA_BITS))
        elif spec.kty == "EC":
            (crv,) = spec.curves
            material = ec.generate_private_key(EC_CURVES[crv][0]())
        else:
            crv = "Ed25519" if alg in ("EdDSA", "Ed25519") else "Ed448"
            material = OKP_CURVES[crv][0].generate()
        key = cls.from_cryptography(material, alg=alg, kid=kid)
        if kid is None:
            key.kid = key.thumbprint()
        return key

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> Key:
        """A key from a JWK object (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2)."""
        if not isinstance(jwk, Mapping):
            raise InvalidKey("a JWK must be a JSON object")
        kty = jwk.get("kty")
        alg, kid, use, key_ops = jwk.get("alg"), jwk.get("kid"), jwk.get("use"), jwk.get("key_ops")
        if alg is not None and not isinstance(alg, str):
            raise InvalidKey("JWK alg must be a string")
        if key_ops is not None and (
            not isinstance(key_ops, list) or not all(isinstance(op, str) for op in key_ops)
        ):
            raise InvalidKey("JWK key_ops must be a list of strings")
        try:
            material, crv = material_from_jwk(kty, jwk)
        except InvalidKey:
            raise
        except (ValueError, TypeError, _CryptoUnsupported) as exc:
            raise InvalidKey(f"invalid {kty} JWK: {exc}") from None
        if kty == "oct":
            return cls(material, kty="oct", alg=alg, kid=kid, use=use, key_ops=key_ops)
        key = cls.from_cryptography(material, alg=alg, kid=kid)
        return cls(key._material, kty=key.kty, crv=crv, alg=alg, kid=kid, use=use, key_ops=key_ops)

    # -- use ------------------------------------------------------------------------------

    @property
    def is_private(self) -> bool:
        """True for a private key or an HMAC secret: something that can sign."""
        return self._private

    @property
    def algorithms(self) -> frozenset[str]:
        """The algorithms this key may sign or verify with."""
        return self._allowed

    def can(self, operation: str) -> bool:
        """Whether ``key_ops``/``use`` allow ``operation`` ("sign" or "verify")."""
        if self.use == "enc":
            return False
        return self.key_ops is None or operation in self.key_ops

    def signing_algorithm(self, alg: str | None = None) -> str:
        """The algorithm a signature with this key uses: ``alg`` if allowed, else the key's."""
        if alg is None:
            alg = self.alg or _DEFAULT_ALG[self.crv or self.kty]
        if alg not in ALGORITHMS:
            raise UnsupportedAlgorithm(f"unsupported algorithm {alg!r}")
        if alg not in self._allowed:
            raise KeyMismatch(self.jws_refusal(alg))
        if not self._private:
            raise KeyMismatch("a public key cannot sign; load the private key")
        if not self.can("sign"):
            raise KeyMismatch("this key's use/key_ops do not allow signing")
        return alg

    def sign(self, alg: str, signing_input: bytes) -> bytes:
        """Sign raw bytes with ``alg`` (checked against this key first)."""
        return ALGORITHMS[self.signing_algorithm(alg)].sign(self._material, signing_input)

    def public(self) -> Key:
        """The public half, with the same kid/alg/use (an HMAC secret has none)."""
        if self.kty == "oct":
            raise InvalidKey("an HMAC secret has no public part")
        material = self._material.public_key() if self._private else self._material
        return Key(
            material,
            kty=self.kty,
            crv=self.crv,
            alg=self.alg,
            kid=self.kid,
            use=self.use,
            key_ops=self.key_ops,
        )

    # -- export ---------------------------------------------------------------------------

    def to_jwk(self, private: bool = False) -> dict[str, Any]:
        """This key as a JWK dict; private members only with ``private=True``."""
        if self.kty == "oct" and not private:
            raise InvalidKey("an HMAC secret has no public JWK; pass private=True to export it")
        jwk: dict[str, Any] = {"kty": self.kty}
        jwk.update(
            jwk_members(
                self.kty, self.crv, self._material, is_private=self._private, export_private=private
            )
        )
        for name in ("kid", "alg", "use"):
            if getattr(self, name) is not None:
                jwk[name] = getattr(self, name)
        if self.key_ops is not None:
            jwk["key_ops"] = sorted(self.key_ops)
        return jwk

    def to_pem(self, private: bool = False, password: bytes | None = None) -> bytes:
        """PEM: SubjectPublicKeyInfo, or PKCS#8 (encrypted when a password is given)."""
        return self._serialize(serialization.Encoding.PEM, private, password)

    def to_der(self, private: bool = False, password: bytes | None = None) -> bytes:
        """DER: SubjectPublicKeyInfo, or PKCS#8 (encrypted when a password is given)."""
        return self._serialize(serialization.Encoding.DER, private, password)

    def _serialize(
        self, encoding: serialization.Encoding, private: bool, password: bytes | None
    ) -> bytes:
        if self.kty == "oct":
            raise InvalidKey("an HMAC secret has no PEM/DER form; use to_jwk(private=True)")
        if private:
            if not self._private:
                raise InvalidKey("this is a public key; there is no private part to export")
            cipher: serialization.KeySerializationEncryption = (
                serialization.BestAvailableEncryption(password)
                if password
                else serialization.NoEncryption()
            )
            return self._material.private_bytes(  # type: ignore[no-any-return]
                encoding, serialization.PrivateFormat.PKCS8, cipher
            )
        public_key = self._material.public_key() if self._private else self._material
        return public_key.public_bytes(  # type: ignore[no-any-return]
            encoding, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def thumbprint(self) -> str:
        """RFC 7638 JWK thumbprint with SHA-256, base64url."""
        jwk = self.to_jwk(private=self.kty == "oct")
        required = {name: jwk[name] for name in sorted((*_PUBLIC_MEMBERS[self.kty], "kty"))}
        return b64encode(hashlib.sha256(orjson.dumps(required)).digest())

    def __repr__(self) -> str:
        parts = [f"kty={self.kty!r}"]
        if self.crv:
            parts.append(f"crv={self.crv!r}")
        parts += [f"alg={self.alg!r}", f"kid={self.kid!r}", f"private={self._private}"]
        return f"Key({', '.join(parts)})"


def _x509() -> Any:
    from cryptography import x509

    return x509
