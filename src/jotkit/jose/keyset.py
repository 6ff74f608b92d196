"""Key sets (RFC 7517 §5): the keys a verifier trusts, addressed by ``kid``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from jotkit.codes import ERR_JWKS_MIXED_KEY_TYPES
from jotkit.jose.errors import InvalidKey
from jotkit.jose.keys import HeaderRoute, Key

__all__ = ["KeySet"]

# RFC 7518 §6.2.2, §6.3.2 and RFC 8037 §2: the members that make a JWK private.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth"})


class KeySet:
    """A set of keys addressed by ``kid`` (RFC 7517 §5): what a verifier trusts."""

    __slots__ = ("_by_kid", "_keys", "jws_header_memo")

    def __init__(self, keys: Iterable[Key]) -> None:
        """Hold ``keys``; two keys with one ``kid`` are refused (the choice would be ambiguous),
        and so is a set whose verifying keys mix HMAC secrets with public-key keys."""
        self._keys = tuple(keys)
        self._by_kid: dict[str, Key] = {}
        for key in self._keys:
            if not isinstance(key, Key):
                raise InvalidKey("a KeySet holds Key objects")
            if key.kid is not None:
                if key.kid in self._by_kid:
                    raise InvalidKey(f"two keys share kid {key.kid!r}")
                self._by_kid[key.kid] = key
        # With a shared secret beside public keys, the token's own "alg" and "kid" would pick
        # HMAC for a token meant for a public key: anyone holding the secret (every party it
        # is shared with) could then pass as the public key's signer (Wycheproof's mixed JWK
        # Set case). A key that cannot verify (use "enc") cannot be picked and is left alone.
        if len({key.kty == "oct" for key in self._keys if key.jws_verify_algorithms}) > 1:
            raise InvalidKey(
                "this key set mixes HMAC secrets (oct) with public-key keys: a verifier could "
                "be made to check a token meant for a public key with a shared secret; keep "
                "them in separate sets",
                code=ERR_JWKS_MIXED_KEY_TYPES,
            )
        # The header routes jws.verify_compact memoizes for this set (see Key's jws_* members).
        self.jws_header_memo: dict[bytes, HeaderRoute] = {}

    @classmethod
    def from_jwks(
        cls, jwks: Mapping[str, Any] | str | bytes, *, public_only: bool = False
    ) -> KeySet:
        """Parse a JWK Set; keys of unknown type or with bad members are skipped (RFC 7517 §5).
        A set that mixes ``oct`` secrets with public keys is refused (ERR_JWKS_MIXED_KEY_TYPES).

        ``public_only`` is for a set fetched from someone else (an issuer's ``jwks_uri``): its
        ``oct`` keys are skipped, since a shared secret that was published lets its readers
        sign any token, and private members are dropped before parsing, so a hostile set
        cannot make us check (or recover the primes of) a private key."""
        if isinstance(jwks, str | bytes):
            try:
                jwks = orjson.loads(jwks)
            except orjson.JSONDecodeError:
                raise InvalidKey("a JWK Set must be JSON") from None
        if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
            raise InvalidKey('a JWK Set is an object with a "keys" array')
        keys: list[Key] = []
        for jwk in jwks["keys"]:
            if public_only:
                if not isinstance(jwk, Mapping) or jwk.get("kty") == "oct":
                    continue
                jwk = {name: value for name, value in jwk.items() if name not in _PRIVATE_MEMBERS}
            try:
                keys.append(Key.from_jwk(jwk))
            except InvalidKey:
                continue
        return cls(keys)

    def to_jwks(self, private: bool = False) -> dict[str, Any]:
        """The set as a JWKS dict (public members only unless ``private=True``)."""
        return {"keys": [key.to_jwk(private=private) for key in self._keys]}

    def get(self, kid: str) -> Key | None:
        """The key with this ``kid``, or None."""
        return self._by_kid.get(kid)

    def candidates(self, kid: str | None, alg: str) -> list[Key]:
        """The keys that may check a signature with ``alg`` (only the ``kid`` one if given)."""
        if kid is not None:
            key = self._by_kid.get(kid)
            return [key] if key is not None and alg in key.jws_verify_algorithms else []
        return [key for key in self._keys if alg in key.jws_verify_algorithms]

    def __iter__(self) -> Iterator[Key]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, kid: object) -> bool:
        return kid in self._by_kid

    def __repr__(self) -> str:
        return f"KeySet({[key.kid for key in self._keys]!r})"
